"""The one-pass, every-core reader gives exactly the sequential reference's vocabulary, ids,
sentences and read statistics, on every script and every awkward input."""

import collections
import gzip

import numpy as np
import pytest

from sg_jax.data import fastread, piece
from sg_jax.data.corpus import EncodedCorpus, Vocab, load_corpus
from sg_jax.data.text import ReadStats, iter_sentences
from sg_jax.errors import CorpusError

LINES = [
    "The café's crème brûlée -- naïve, déjà vu; Ünïcödé CAPITALS and e\u0301 decomposed.",
    "بِسْمِ ٱللَّهِ ٱلرَّحْمَٰنِ ٱلرَّحِيمِ ۝ الْحَمْدُ لِلَّـهِ رَبِّ الْعَالَمِينَ",
    "بسم الله الرحمن الرحيم الحمد لله رب العالمين",
    "בְּרֵאשִׁית בָּרָא אֱלֹהִים בראשית ברא",
    "हिन्दी भाषा में क्षत्रिय और पृथ्वी, हिन्दी!",
    "ภาษาไทย เป็น ภาษา ที่ สวยงาม ภาษาไทย",
    "中文 日本語のテキスト 한국어 문장 中文",
    "emoji 😀 👍🏽 family 👨‍👩‍👧 flags 🇫🇷 end",
    "don't it's rock'n'roll term-end well-known — 'quoted' ‘typographic’ it’s x-ray -dash- o'",
    "",
    "   \t  ",
    "ﬁne ligature ＦＵＬＬ width İstanbul ǅ Straße ΣΊΣΥΦΟΣ",
    "numbers 3.5 1,000 42 x_y_z __init__ İ",
    "separators\x1chere\x1dand\x1ethere\x1fok \x85 next\u2028line\u00a0nbsp",
    "a" * 1001 + " long word dropped " + "b" * 1000 + " kept",
    "nfkc a¨b c\u3000d ﬃ ½ x\u00a0y Ⅻ ㎏ ¨ \u0301lone mark",
]


def sample_bytes(rng, n_lines=200, crlf=False):
    lines = [LINES[i] for i in rng.integers(0, len(LINES), n_lines)]
    lines.append(" ".join(LINES[:9]) * 40)  # a very long line (max_sentence_length cuts it)
    text = ("\r\n" if crlf else "\n").join(lines)
    return text.encode("utf-8")


def reference(path_or_source, **opts):
    """The sequential reader: Counter over iter_sentences, encode over iter_sentences."""
    read = {k: opts.pop(k) for k in list(opts) if k in ("lowercase", "errors", "max_sentence_length",
                                                          "normalize", "strip_diacritics")}
    stats = ReadStats()
    counter = collections.Counter()
    for sentence in iter_sentences(path_or_source, stats=stats, **read):
        counter.update(sentence)
    first = list(counter)
    kept = [w for w in first if counter[w] >= opts.get("min_count", 1)]
    words = sorted(kept, key=lambda w: -counter[w])  # the vocabulary order as sg_jax has always built it
    index = {w: i for i, w in enumerate(words)}
    sentences = [[index[t] for t in s if t in index] for s in iter_sentences(path_or_source, **read)]
    return words, [counter[w] for w in words], EncodedCorpus.from_sentences(sentences), stats


def assert_same(got, want):
    vocab, corpus, stats = got
    words, counts, enc, ref_stats = want
    assert vocab.words == tuple(words)
    assert vocab.counts.tolist() == counts
    np.testing.assert_array_equal(corpus.ids, enc.ids)
    np.testing.assert_array_equal(corpus.offsets, enc.offsets)
    assert stats == ref_stats


OPTIONS = [dict(), dict(lowercase=False), dict(normalize="NFKC", strip_diacritics=True),
           dict(normalize=None, max_sentence_length=7), dict(min_count=2, max_sentence_length=50)]


@pytest.mark.parametrize("opts", OPTIONS)
@pytest.mark.parametrize("crlf", [False, True])
def test_in_process_pieces_equal_the_reference(tmp_path, opts, crlf):
    path = tmp_path / "c.txt"
    path.write_bytes(sample_bytes(np.random.default_rng(len(opts)), crlf=crlf))
    want = reference(path, **dict(opts))
    for piece_bytes in (1 << 20, 4096, 97):  # one piece; several; cuts inside long lines
        got = load_corpus(path, processes=1, piece_bytes=piece_bytes, **opts)
        assert_same(got, want)


def test_worker_processes_equal_the_reference(tmp_path, monkeypatch):
    started = []
    real = fastread._Workers.__init__
    monkeypatch.setattr(fastread._Workers, "__init__", lambda self, n: started.append(n) or real(self, n))
    path = tmp_path / "c.txt"
    path.write_bytes(sample_bytes(np.random.default_rng(5), n_lines=400) + b"\nno newline at the end")
    seen = []
    got = load_corpus(path, processes=2, piece_bytes=2048, on_progress=lambda a, b: seen.append((a, b)))
    assert_same(got, reference(path))
    size = path.stat().st_size
    assert len(seen) > 3 and seen[-1] == (size, size) and [a for a, _ in seen] == sorted(a for a, _ in seen)
    gz = tmp_path / "c.txt.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert gz.stat().st_size > 4 * 256  # several pieces: read by the workers
    assert_same(load_corpus(gz, processes=2, piece_bytes=256), reference(path))
    assert started == [2, 2]  # both files went through the worker processes


def test_invalid_utf8_under_both_policies(tmp_path):
    good = sample_bytes(np.random.default_rng(1), n_lines=60)
    lines = good.split(b"\n")
    lines[7] = b"caf\xc3 bad \xff\xfe byte \xe2\x82 truncated \xed\xa0\x80 surrogate"
    lines[40] = lines[40] + b" \xf0\x9f\x98"
    path = tmp_path / "bad.txt"
    path.write_bytes(b"\n".join(lines))
    for piece_bytes in (1 << 20, 300):
        got = load_corpus(path, errors="replace", processes=1, piece_bytes=piece_bytes)
        want = reference(path, errors="replace")
        assert_same(got, want)
        assert got[2].replaced_bytes == want[3].replaced_bytes > 0
        with pytest.raises(CorpusError) as fast:
            load_corpus(path, processes=1, piece_bytes=piece_bytes)
        with pytest.raises(CorpusError) as ref:
            list(iter_sentences(path))
        assert str(fast.value) == str(ref.value) and "line 8 (byte 4 of the line)" in str(ref.value)


def test_invalid_utf8_inside_a_line_longer_than_a_piece(tmp_path):
    path = tmp_path / "long.txt"
    path.write_bytes(b"first line\n" + b"word " * 300 + b"\xff" + b" more" * 10 + b"\n")
    with pytest.raises(CorpusError) as ref:
        list(iter_sentences(path))
    with pytest.raises(CorpusError) as fast:
        load_corpus(path, processes=1, piece_bytes=128)
    assert str(fast.value) == str(ref.value) and "line 2 (byte 1501 of the line)" in str(ref.value)


def test_nul_bytes_and_empty_files_are_refused_alike(tmp_path):
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"some text\n" * 50 + b"bin\x00ary\n")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"\n \n!!\n")
    for path in (nul, empty):
        with pytest.raises(CorpusError) as ref:
            list(iter_sentences(path))
        with pytest.raises(CorpusError) as fast:
            load_corpus(path, processes=1, piece_bytes=64)
        assert str(fast.value) == str(ref.value)


def test_a_run_without_whitespace_longer_than_a_piece_falls_back(tmp_path):
    path = tmp_path / "run.txt"
    path.write_bytes(b"start here\n" + b"a,b;c" * 400 + b"\nend line\n")
    with pytest.raises(fastread.NoCut):
        list(fastread.pieces(path, 256))
    assert_same(load_corpus(path, processes=1, piece_bytes=256), reference(path))


def test_ascii_fast_path_equals_the_unicode_path():
    data = "Hello, World! don't stop-it x_1 -- 3.5 a'b'c a-'b\x1cend\r\n\tTab ''x'' -y-\n".encode() * 3
    fast = piece.scan_piece(data, True, "strict", "NFC", False)
    slow = piece.scan_piece(data + "é".encode(), True, "strict", "NFC", False)  # not ASCII: the str path
    assert fast.words == slow.words[:len(fast.words)]
    np.testing.assert_array_equal(fast.ids, slow.ids[:len(fast.ids)])
    assert fast.dropped_chars == slow.dropped_chars
    np.testing.assert_array_equal(fast.lines[:-1], slow.lines[:-1])


def test_in_memory_sources_equal_the_reference():
    sentences = [s.split() for s in LINES if s.strip()] * 3
    assert_same(load_corpus(sentences), reference(sentences))
    assert_same(load_corpus(LINES * 2, max_sentence_length=5), reference(LINES * 2, max_sentence_length=5))
    assert_same(load_corpus("toy:seeds"), reference("toy:seeds"))


def test_vocabulary_orders_match_build(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes(sample_bytes(np.random.default_rng(9)))
    for order in Vocab.ORDERS:
        for max_size in (None, 5):
            vocab = load_corpus(path, order=order, max_size=max_size, min_count=2, piece_bytes=500,
                                processes=1)[0]
            assert vocab == Vocab.build(iter_sentences(path), order=order, max_size=max_size, min_count=2)


def test_read_progress_reaches_the_command_line_bar(tmp_path, monkeypatch, capsys):
    from sg_jax import console
    from sg_jax.config import Config
    from sg_jax.runs import read_corpus

    path = tmp_path / "c.txt"
    path.write_bytes(sample_bytes(np.random.default_rng(2), n_lines=100))
    seen = []
    data = read_corpus(Config(min_count=1), path, on_read=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (path.stat().st_size,) * 2 and data.encoded.n_tokens > 0
    on_read, close = console.read_progress_callback(True)
    on_read(10, 100)  # a small file: no bar
    close()
    assert "100" not in capsys.readouterr().err
    monkeypatch.setattr(console, "READ_BAR_BYTES", 0)
    on_read, close = console.read_progress_callback(True)
    on_read(40, 100)
    on_read(100, 100)
    close()
    assert "100/100" in capsys.readouterr().err
    assert console.read_progress_callback(False)[0] is None
