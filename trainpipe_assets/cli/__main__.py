import sys

from trainpipe_assets.cli import main

sys.exit(main())
