"""``python -m inception_core.train``: the flags parse (and ``--help`` answers) before torch is imported."""

import sys

from inception_core.train.config import build_parser

parser = build_parser("python -m inception_core.train")
args = parser.parse_args()

from inception_core.train.runner import run_from_args  # noqa: E402  (torch: only for a run)

sys.exit(run_from_args(args, parser))
