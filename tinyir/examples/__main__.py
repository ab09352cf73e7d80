"""``python -m tinyir.examples [NAME]`` prints the path of a shipped example model."""

import sys

from tinyir.examples import KWS_CNN

EXAMPLES = {"kws_cnn": KWS_CNN}

name = sys.argv[1] if len(sys.argv) > 1 else "kws_cnn"
if name not in EXAMPLES:
    print(f"unknown example {name!r}; examples: {', '.join(EXAMPLES)}", file=sys.stderr)
    sys.exit(2)
print(EXAMPLES[name])
