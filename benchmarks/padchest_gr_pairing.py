"""PadChest-GR pairing by order at the real size: 4,555 records without ids against a master table of the same
studies (made from the synthetic sample's studies, repeated under new StudyIDs), timing ``records()`` (JSON
parse, master table grouping, checks, pairing and verification of every pair). Run by hand:

    python benchmarks/padchest_gr_pairing.py --records 4555 --out /tmp/pgr-pairing
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

from cxrdata.sample.padchest_gr import MASTER_COLUMNS, MASTER_TABLE, REPORTS_FILE, write_padchest_gr_sample
from cxrdata.sources.padchest_gr import PadchestGrSource


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=4555)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    sample = write_padchest_gr_sample(args.out / "sample", studies=20, defects=False)
    entries = json.loads((sample.root / REPORTS_FILE).read_text())
    with (sample.root / MASTER_TABLE).open(newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    root = args.out / "big"
    (root / "PadChest_GR").mkdir(parents=True, exist_ok=True)
    records, table = [], []
    for n in range(args.records):
        entry = entries[n % len(entries)]
        study = f"{n:039d}"
        records.append({k: v for k, v in entry.items() if k not in ("StudyID", "ImageID")})
        table += [[study, f"{study}_abcdef.png", *r[2:]] for r in rows if r[0] == entry["StudyID"]]
    (root / REPORTS_FILE).write_text(json.dumps(records))
    with (root / MASTER_TABLE).open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(MASTER_COLUMNS)
        writer.writerows(table)
    source = PadchestGrSource(root, image_format="path")
    source.check()
    started = time.perf_counter()
    paired = source.records()
    seconds = time.perf_counter() - started
    unpaired = sum(r["_problem"] is not None for r in paired)
    print(f"{len(records)} records, {len(table)} master rows: records() {seconds:.2f} s, pairing={source.pairing}, "
          f"unpaired={unpaired}")


if __name__ == "__main__":
    main()
