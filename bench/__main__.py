"""`python -m bench [--quick] [--out BENCHMARKS.md]`."""
import sys

from bench.runner import main

sys.exit(main())
