import sys

from deepaug.bench import main

sys.exit(main())
