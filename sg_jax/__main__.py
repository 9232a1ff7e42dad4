import sys

from sg_jax.cli import main

sys.exit(main())
