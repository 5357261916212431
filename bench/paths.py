"""Where the bench's files are."""

from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PLAYBOOKS = BENCH / "playbooks"
DATA = BENCH / "data"
EVENTS_FILE = DATA / "events.jsonl.gz"
RESULTS_FILE = BENCH / "results.json"
