"""The paper's reference numbers (radae/analysis/paper.py) against the appendix's MNIST tables 1-4.

The transcription is checked twice: a few cells read by hand off the appendix (always run), and every
cell against the Markdown copy of tables 1-4 in the development machines' method notes (skipped where
that folder is absent).
"""

import re
from pathlib import Path

import pytest

from radae.analysis import paper

METHOD_MD = Path(__file__).resolve().parents[2] / "shared" / "docs" / "method.md"


def test_hand_checked_cells():
    """Cells read off the appendix's printed tables."""
    assert paper.OURS.model == paper.OURS_NAME and paper.OURS.max_damage == (0.92, 0.82, 0.69)
    assert paper.OURS.fid == 39.37 and paper.FID_ERROR_BARS["mnist"] == (39.37, 0.9)
    by_name = {row.model: row for row in paper.TABLE1}
    assert by_name["LipschitzVAE"].fid == 59.45 and by_name["SE"].max_damage == (0.90, 0.60, 0.54)
    assert by_name["PGD-trained robust GMM AE (K=10, alpha 0.95)"].latent == (0.39, 0.46, 0.58)
    assert paper.TABLE2[1].latent_x_xa == (0.99, 0.93, 0.86) and paper.TABLE2[25].max_damage_x_xa == (0.97, 0.88, 0.77)
    assert paper.TABLE3[0.1].max_damage == (0.80, 0.59, 0.50) and paper.TABLE3[1.0].fid == 41.86
    table4 = {row.model: row for row in paper.TABLE4}
    assert table4[paper.OURS_NAME].clean == 0.97 and table4[paper.OURS_NAME].latent == (0.89, 0.79, 0.55)
    assert table4["VAE"].max_damage == (0.66, 0.35, 0.31)


def test_tables_are_complete_and_consistent():
    assert set(paper.TABLE2) == set(paper.TABLE2_K) and set(paper.TABLE3) == set(paper.TABLE3_ALPHA)
    assert set(paper.TABLE1_MATCH) == {row.model for row in paper.TABLE1}
    assert {row.model for row in paper.TABLE4} <= set(paper.TABLE1_MATCH)  # table 4 rows map onto radae models
    assert all(r.latent_x_xa and r.max_damage_x_xa for r in (*paper.TABLE2.values(), *paper.TABLE3.values()))
    # the paper's "ours" (K 10, alpha 0.95) is one model in tables 1, 2 and 3
    for same in (paper.TABLE2[10], paper.TABLE3[0.95]):
        assert (same.latent, same.max_damage, same.fid) == (paper.OURS.latent, paper.OURS.max_damage, paper.OURS.fid)
    assert "shared" not in paper.SOURCE + paper.SENSITIVITY_NOTE


def _triple(cell: str) -> tuple[float, ...]:
    return tuple(float(v) for v in cell.split("/"))


def _markdown_tables(text: str) -> dict[str, list[list[str]]]:
    """``{"Table N": [cells of each body row]}`` of the Markdown tables after each "Table N (" line."""
    tables, current = {}, None
    for line in text.splitlines():
        head = re.match(r"(Table \d) \(", line)
        if head:
            current = tables.setdefault(head.group(1), [])
        elif current is not None and line.startswith("|") and not line.startswith("|---"):
            current.append([c.strip() for c in line.strip("|").split("|")])
    return {name: rows[1:] for name, rows in tables.items()}  # drop the header row


@pytest.mark.skipif(not METHOD_MD.is_file(), reason="the method notes beside the checkout are not on this machine")
def test_every_cell_matches_the_method_notes():
    tables = _markdown_tables(METHOD_MD.read_text())
    t1 = tables["Table 1"]
    assert len(t1) == len(paper.TABLE1)
    for cells, row in zip(t1, paper.TABLE1, strict=True):  # same order as the appendix
        assert (_triple(cells[1]), _triple(cells[2]), float(cells[3])) == (row.latent, row.max_damage, row.fid), cells
    for name, table, keys in (("Table 2", paper.TABLE2, paper.TABLE2_K), ("Table 3", paper.TABLE3, paper.TABLE3_ALPHA)):
        body = tables[name]
        assert [float(c[0]) for c in body] == [float(k) for k in keys]
        for cells in body:
            row = table[type(keys[0])(float(cells[0]))]
            assert (
                _triple(cells[1]),
                _triple(cells[2]),
                _triple(cells[3]),
                _triple(cells[4]),
                float(cells[5]),
            ) == (row.latent, row.latent_x_xa, row.max_damage, row.max_damage_x_xa, row.fid), (name, cells)
    t4 = tables["Table 4"]
    assert len(t4) == len(paper.TABLE4)
    for cells, row in zip(t4, paper.TABLE4, strict=True):
        assert (float(cells[1]), _triple(cells[2]), _triple(cells[3])) == (row.clean, row.latent, row.max_damage)
