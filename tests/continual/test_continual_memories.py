"""FeRAM words and OxRAM binary pairs: write counting, destructive reads, ledgers, chips."""

import pytest
import torch

from memlearn.continual.memories import FeramWords, OxramBinary, bits_of
from memlearn.continual.store import ChipStore
from memlearn.devices.preset import load_preset


def _codes(n_chips, shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-128, 128, (n_chips, *shape), generator=g).to(torch.int16)


def test_bits_round_trip():
    codes = torch.arange(-128, 128, dtype=torch.int16)
    bits = bits_of(codes).long()
    unsigned = (bits * 2 ** torch.arange(8)).sum(-1)
    assert torch.equal(torch.where(unsigned > 127, unsigned - 256, unsigned), codes.long())


def test_feram_read_and_write_back_keeps_words_and_counts_reversals():
    fe = FeramWords("feram-1t1c", 2, (4, 5))
    codes = _codes(2, (4, 5), 0)
    fe.write(codes)
    after_write = fe.writes.clone()
    assert torch.equal(after_write, bits_of(codes).int())  # from all-zero words
    for _k in range(3):
        assert torch.equal(fe.read(), codes)
        assert torch.equal(fe.codes, codes)
    # each read reverses every '1' cell twice (read, then write-back); '0' cells are untouched
    assert torch.equal(fe.writes - after_write, 6 * bits_of(codes).int())
    assert torch.equal(fe.update_writes, after_write)


def test_feram_writes_only_changed_bits_and_ledger_adds_up():
    fe = FeramWords("feram-1t1c", 1, (8,))
    a = _codes(1, (8,), 1)
    b = a.clone()
    b[0, :3] = -b[0, :3] - 1  # flip all bits of three words
    fe.write(a)
    before = fe.writes.clone()
    written = fe.write(b)
    assert written.tolist() == [3.0]
    assert int((fe.writes - before).sum()) == 3 * 8
    fe.read()
    led = fe.ledger
    parts = sum(float(e[0]) for e in led.energy_by_category().values())
    assert float(led.total_energy()[0]) == pytest.approx(parts)
    v = load_preset("feram-1t1c").values
    n_bits = int(bits_of(a).sum()) + 3 * 8
    assert float(led.energy["program"][0]) == pytest.approx(n_bits * v["write_energy_j"])


def test_counters_add_up_across_chips():
    codes = _codes(3, (6, 7), 2)
    batched = FeramWords("feram-1t1c", 3, (6, 7))
    batched.write(codes)
    batched.read()
    for c in range(3):
        one = FeramWords("feram-1t1c", 1, (6, 7))
        one.write(codes[c : c + 1])
        one.read()
        assert torch.equal(batched.writes[c], one.writes[0])
        assert float(batched.ledger.total_energy()[c]) == pytest.approx(
            float(one.ledger.total_energy()[0])
        )
    assert int(batched.writes.sum()) == sum(int(batched.writes[c].sum()) for c in range(3))


def test_oxram_writes_happen_exactly_on_sign_flips():
    preset = load_preset("oxram-slc").replace(stuck_low_rate=0.0, stuck_high_rate=0.0)
    g = torch.Generator().manual_seed(3)
    ox = OxramBinary(preset, 2, 6, 10, g)
    s = torch.where(torch.rand(2, 6, 10, generator=g) > 0.5, 1.0, -1.0)
    ox.program(s)
    assert torch.equal(ox.states(), s)
    total = ox.writes.clone()
    for _k in range(4):
        flip = torch.rand(2, 6, 10, generator=g) < 0.2
        s2 = torch.where(flip, -s, s)
        flips = ox.program(s2)
        assert flips.tolist() == flip.flatten(1).sum(1).tolist()
        delta = (ox.writes - total).transpose(1, 2)  # [chips, out, in, 2]
        # both cells of a flipped pair are written once, no other cell is
        assert torch.equal(delta, flip[..., None].expand(-1, -1, -1, 2).int())
        assert torch.equal(ox.states(), s2)
        total, s = ox.writes.clone(), s2
    assert torch.equal(ox.read(images=5), s)


def test_chip_store_rounding_and_signs():
    g = torch.Generator().manual_seed(4)
    w = (torch.rand(1, 5, 9, generator=g) - 0.5) * 2
    store = ChipStore(w, "feram-1t1c", "oxram-slc", "nearest", 3.0, g)
    h = store.hidden()
    assert (h - w).abs().max() <= store.lsb / 2 + 1e-6
    assert torch.equal(torch.sign(h), torch.where(store.feram.codes >= 0, 1.0, -1.0))
    # a sub-LSB update is lost with nearest rounding, kept in expectation with stochastic
    store.write(h + 0.1 * store.lsb)
    assert torch.equal(store.hidden(), h)
    st = ChipStore(w.expand(400, -1, -1), "feram-1t1c", "oxram-slc", "stochastic", 3.0, g)
    h0 = st.hidden()
    st.write(h0 + 0.25 * st.lsb)
    mean_step = ((st.hidden() - h0) / st.lsb).mean()
    assert 0.2 < float(mean_step) < 0.3
