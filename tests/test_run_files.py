"""sg_jax.run_files: the metrics log appended a line per call, read back after a crash."""

import json

import pytest

from sg_jax.errors import FormatError
from sg_jax.run_files import METRICS, append_metrics, read_metrics, write_metrics

RECORDS = [{"step": 16 * (i + 1), "epoch": 0.25 * (i + 1), "loss": 3.0 - 0.5 * i} for i in range(4)]


def test_appended_records_read_back_in_order(tmp_path):
    out = tmp_path / "run"  # created by the first append
    for r in RECORDS:
        append_metrics(out, r)
    assert read_metrics(out) == RECORDS
    assert (out / METRICS).read_text().count("\n") == len(RECORDS)  # one line each
    assert read_metrics(tmp_path / "none") == []


@pytest.mark.parametrize("cut", [1, 7, -2])
def test_a_last_line_cut_short_is_skipped(tmp_path, cut):
    write_metrics(tmp_path, RECORDS[:3])
    line = json.dumps(RECORDS[3]) + "\n"
    with open(tmp_path / METRICS, "a") as f:
        f.write(line[:cut])  # a run killed in the middle of its append
    assert read_metrics(tmp_path) == RECORDS[:3]
    # a resumed run rewrites the log from its checkpoint's records, then appends again
    write_metrics(tmp_path, RECORDS[:2])
    append_metrics(tmp_path, RECORDS[3])
    assert read_metrics(tmp_path) == RECORDS[:2] + RECORDS[3:]


def test_a_complete_last_record_without_its_newline_is_kept(tmp_path):
    write_metrics(tmp_path, RECORDS[:2])
    with open(tmp_path / METRICS, "a") as f:
        f.write(json.dumps(RECORDS[2]))
    assert read_metrics(tmp_path) == RECORDS[:3]


def test_damage_before_the_last_line_is_an_error(tmp_path):
    write_metrics(tmp_path, RECORDS)
    lines = (tmp_path / METRICS).read_text().splitlines(keepends=True)
    lines[1] = lines[1][:5] + "\n"
    (tmp_path / METRICS).write_text("".join(lines))
    with pytest.raises(FormatError, match="line 2"):
        read_metrics(tmp_path)
