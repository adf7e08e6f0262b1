"""The project's error types, in one light module (no heavy imports) so that every entry point can
catch them and print one clear line."""


class DeepAugError(Exception):
    """Base class: a failure whose message says what is wrong and how to fix it."""


class ConfigError(DeepAugError, ValueError):
    """The workflow config is invalid; the message names the key."""


class UnsafeNameError(ConfigError):
    """A name that becomes a path (model, dataset, output folder) would leave its folder or is not a plain
    name (``..``, an absolute path, shell characters); raised before anything is created or deleted."""


class DataUnavailableError(DeepAugError, RuntimeError):
    """A dataset or model that cannot be obtained (offline, missing archive, bad checksum)."""


class LayerIndexError(DeepAugError, IndexError):
    """A layer index that the backbone does not have."""


class CheckpointMismatchError(DeepAugError, RuntimeError):
    """A checkpoint on disk belongs to different settings than the run resuming from it."""


class NonFiniteLossError(DeepAugError, FloatingPointError):
    """The loss became NaN or inf."""


class NonFiniteError(DeepAugError, FloatingPointError):
    """A model, its features or its predictions are NaN/inf (or constant where a score needs variation)."""


class DataValidationError(DeepAugError, ValueError):
    """A data file has the wrong shape, columns or values; the message names the file and what is wrong."""


class DiskFullError(DeepAugError, OSError):
    """No space left on the device a result or checkpoint is written to."""


class CheckpointInUseError(DeepAugError, RuntimeError):
    """Another process holds the run's checkpoint directory."""


class DeviceError(DeepAugError, RuntimeError):
    """The requested device does not exist on this machine."""


class UsageError(DeepAugError, ValueError):
    """An impossible command-line argument: the CLI prints one line and exits with status 2."""


class UnsafeFileError(DeepAugError, RuntimeError):
    """A ``.pt`` file whose pickle asks to import code that no deepaug file contains (it was planted or
    damaged): refused without running anything."""


class LegacyFileError(DeepAugError, RuntimeError):
    """A ``.pt`` file in the format of an older deepaug (objects that are no longer loaded)."""


class LockFileError(DeepAugError, RuntimeError):
    """A lock file or lock directory that is a symlink, another user's, or open to others."""
