"""alae_fast.data: digits, image folders, MNIST IDX files, the resumable sharded stream."""

import gzip
import struct
import warnings

import numpy as np
import pytest
import torch

# Pillow is a core dependency, but the lent GPU machines' python lacks it (their CUDA test run
# must still collect): without it this module is skipped, not a collection error.
Image = pytest.importorskip("PIL.Image")

from alae_fast.data import (DataStream, DigitsDataset, ImageFolderDataset, MNISTDataset, ShardedStreamSampler,
                            TensorImageDataset, find_mnist_files, load_digits, load_image, load_mnist,
                            lower_resolution, open_dataset, read_idx, stream_indices, write_idx)


# ---------------------------------------------------------------------------- digits

@pytest.fixture(scope="module")
def digits():
    return {s: load_digits(s) for s in ("train", "test", "all")}


def _bilinear_np(img: np.ndarray, size: int) -> np.ndarray:
    # half-pixel-centre bilinear with edge clamping, written out per output pixel
    h = img.shape[0]
    out = np.empty((size, size))
    for i in range(size):
        for j in range(size):
            sy = min(max((i + 0.5) * h / size - 0.5, 0.0), h - 1)
            sx = min(max((j + 0.5) * h / size - 0.5, 0.0), h - 1)
            y0, x0 = int(np.floor(sy)), int(np.floor(sx))
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, h - 1)
            fy, fx = sy - y0, sx - x0
            out[i, j] = ((1 - fy) * ((1 - fx) * img[y0, x0] + fx * img[y0, x1])
                         + fy * ((1 - fx) * img[y1, x0] + fx * img[y1, x1]))
    return out


def test_digits_split_sizes_disjoint_and_every_class(digits):
    xtr, ytr = digits["train"]
    xte, yte = digits["test"]
    assert xtr.shape == (1500, 1, 32, 32) and xte.shape == (297, 1, 32, 32)
    assert xtr.dtype == torch.float32 and ytr.dtype == torch.int64
    assert set(ytr.tolist()) == set(range(10)) == set(yte.tolist())
    # the split is the fixed RandomState(0) permutation: recompute it independently
    from sklearn.datasets import load_digits as sk

    raw = sk().images
    test_idx = np.sort(np.random.RandomState(0).permutation(1797)[:297])
    train_idx = np.setdiff1d(np.arange(1797), test_idx)
    for k in (0, 100, 296):
        ref = _bilinear_np(raw[test_idx[k]] / 16.0, 32) * 2 - 1
        np.testing.assert_allclose(xte[k, 0].numpy(), ref, atol=1e-5)
    ref = _bilinear_np(raw[train_idx[777]] / 16.0, 32) * 2 - 1
    np.testing.assert_allclose(xtr[777, 0].numpy(), ref, atol=1e-5)


def test_digits_range_and_determinism(digits):
    x, y = digits["all"]
    assert x.shape == (1797, 1, 32, 32)
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    x2, y2 = load_digits("all")
    assert torch.equal(x, x2) and torch.equal(y, y2)
    ds = DigitsDataset("test")
    img, label = ds[5]
    assert torch.equal(img, digits["test"][0][5]) and int(label) == int(digits["test"][1][5])
    assert load_digits("test", resolution=16)[0].shape == (297, 1, 16, 16)


@pytest.mark.parametrize("bad", [dict(split="val"), dict(resolution=4), dict(resolution=32.0)])
def test_digits_bad_arguments(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        load_digits(**{"split": "train", **bad})


def test_lower_resolution_is_block_mean():
    x = torch.randn(3, 2, 32, 32, dtype=torch.float64)
    for res in (32, 16, 8, 4, 1):
        k = 32 // res
        ref = x.numpy().reshape(3, 2, res, k, res, k).mean(axis=(3, 5))
        np.testing.assert_allclose(lower_resolution(x, res).numpy(), ref, rtol=1e-12, atol=1e-12)
    assert lower_resolution(x[0], 8).shape == (2, 8, 8)
    with pytest.raises(ValueError, match="resolution"):
        lower_resolution(x, 12)
    with pytest.raises(ValueError, match="images"):
        lower_resolution(torch.zeros(1, 1, 8, 4), 4)


# ---------------------------------------------------------------------------- image folders

def _rand_img(rng, h, w, mode="RGB"):
    if mode == "L":
        return Image.fromarray(rng.randint(0, 256, (h, w), dtype=np.uint8), "L")
    if mode == "RGBA":
        return Image.fromarray(rng.randint(0, 256, (h, w, 4), dtype=np.uint8), "RGBA")
    return Image.fromarray(rng.randint(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


@pytest.fixture
def mixed_folder(tmp_path):
    rng = np.random.RandomState(0)
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    _rand_img(rng, 16, 24).save(root / "a_wide.png")            # 24 wide, 16 high: exact crop, no resize
    _rand_img(rng, 50, 17, "L").save(root / "b_tall_grey.png")
    _rand_img(rng, 64, 64, "RGBA").save(root / "c_alpha.PNG")    # upper-case extension
    _rand_img(rng, 40, 30).save(root / "sub" / "d.jpg", quality=95)
    _rand_img(rng, 8, 8).convert("P").save(root / "sub" / "e_palette.png")
    (root / "notes.txt").write_text("not an image")
    (root / "f_garbage.png").write_bytes(rng.bytes(300))
    good = (root / "a_wide.png").read_bytes()
    (root / "g_truncated.png").write_bytes(good[: len(good) // 2])
    return root


def test_folder_mixed_sizes_skips_corrupt_and_counts(mixed_folder):
    with pytest.warns(RuntimeWarning) as said:
        ds = ImageFolderDataset(mixed_folder, resolution=16)
    messages = [str(w.message) for w in said]
    assert any("skipped 2 unreadable image files of 7" in m for m in messages), messages
    # the random RGBA image is composited over black, and said so (tests/test_transparency.py)
    assert any("1 image of 5 has transparent pixels" in m and "c_alpha.PNG" in m for m in messages), messages
    assert [p.name for p in ds.notes.transparent] == ["c_alpha.PNG"]
    assert ds.num_skipped == 2 and {p.name for p, _ in ds.skipped} == {"f_garbage.png", "g_truncated.png"}
    assert len(ds) == 5
    names = sorted(f.name for f in ds.files)
    assert names == ["a_wide.png", "b_tall_grey.png", "c_alpha.PNG", "d.jpg", "e_palette.png"]
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and int(y) == -1
        assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    batch, labels = ds.get_batch(torch.tensor([4, 0, 2]))
    assert batch.shape == (3, 3, 16, 16) and torch.equal(batch[1], ds[0][0])


def test_power_of_two_multiples_are_block_averaged_as_the_official_code(tmp_path):
    """A 128-px image for a 32-px model: the 4x4 block means (the official code's repeated 2x2
    average pooling, here rounded half up to a grey level), not Lanczos; 96 px (3x): Lanczos."""
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 256, (128, 160, 3), dtype=np.uint8)  # wide: the centre 128 columns
    Image.fromarray(arr).save(tmp_path / "big.png")
    got = load_image(tmp_path / "big.png", 32)
    square = arr[:, 16:144].astype(np.float64)
    pooled = square
    for _ in range(2):  # the official way: 2x2 average pooling, twice, in float
        pooled = pooled.reshape(pooled.shape[0] // 2, 2, pooled.shape[1] // 2, 2, 3).mean((1, 3))
    assert np.abs(got.transpose(1, 2, 0) - pooled).max() <= 0.5
    np.testing.assert_array_equal(got.transpose(1, 2, 0), np.floor(pooled + 0.5).astype(np.uint8))
    three = rng.integers(0, 256, (96, 96), dtype=np.uint8)
    Image.fromarray(three).save(tmp_path / "three.png")
    np.testing.assert_array_equal(load_image(tmp_path / "three.png", 32, channels=1)[0],
                                  np.asarray(Image.fromarray(three).resize((32, 32), Image.Resampling.LANCZOS)))


def test_folder_center_crop_and_value_mapping(mixed_folder):
    arr = np.asarray(Image.open(mixed_folder / "a_wide.png"))  # [16, 24, 3]
    with pytest.warns(RuntimeWarning):
        ds = ImageFolderDataset(mixed_folder, resolution=16)
    x = ds[ds.files.index(mixed_folder / "a_wide.png")][0]
    expected = arr[:, 4:20].transpose(2, 0, 1).astype(np.float64) / 127.5 - 1
    np.testing.assert_allclose(x.numpy(), expected, atol=1e-6)
    # a tall image: crop the middle rows, then Lanczos-resize the square
    tall = Image.open(mixed_folder / "b_tall_grey.png")
    crop = tall.crop((0, 16, 17, 33)).resize((16, 16), Image.Resampling.LANCZOS)
    got = load_image(mixed_folder / "b_tall_grey.png", 16, channels=1)
    np.testing.assert_array_equal(got[0], np.asarray(crop))
    grey = load_image(mixed_folder / "b_tall_grey.png", 16, channels=3)
    assert grey.shape == (3, 16, 16) and (grey[0] == grey[1]).all() and (grey[1] == grey[2]).all()


def test_folder_flip_preload_and_lazy_agree(mixed_folder):
    with pytest.warns(RuntimeWarning):
        eager = ImageFolderDataset(mixed_folder, resolution=8, flip=True, preload=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same files of the same split are said once per process
        lazy = ImageFolderDataset(mixed_folder, resolution=8, flip=True, preload=False)
    assert {p.name for p, _ in lazy.skipped} == {p.name for p, _ in eager.skipped} == {"f_garbage.png", "g_truncated.png"}
    assert eager.preloaded and not lazy.preloaded
    n = eager.num_images
    assert len(eager) == len(lazy) == 2 * n
    for i in range(2 * n):
        assert torch.equal(eager[i][0], lazy[i][0])
    for i in range(n):
        assert torch.equal(eager[n + i][0], eager[i][0].flip(-1))
    idx = torch.tensor([0, n + 1, 2 * n - 1, 3])
    eb, _ = eager.get_batch(idx)
    lb, _ = lazy.get_batch(idx)
    assert torch.equal(eb, lb) and torch.equal(eb[1], eager[n + 1][0])
    with pytest.raises(IndexError):
        eager[2 * n]
    with pytest.raises(IndexError):
        eager.get_batch(torch.tensor([2 * n]))


def test_folder_lazy_decode_failure_falls_back_to_next_image(tmp_path):
    rng = np.random.RandomState(3)
    for k in range(3):
        _rand_img(rng, 64, 64).save(tmp_path / f"{k}.jpg", quality=90)
    data = (tmp_path / "1.jpg").read_bytes()
    (tmp_path / "1.jpg").write_bytes(data[: len(data) * 3 // 4])  # header fine, body cut: passes verify()
    ds = ImageFolderDataset(tmp_path, resolution=8, preload=False)
    assert ds.num_images == 3 and ds.num_skipped == 0
    with pytest.warns(RuntimeWarning, match="1.jpg: unreadable"):
        x1 = ds[1][0]
    assert torch.equal(x1, ds[2][0]) and ds.num_skipped == 1
    with pytest.warns(RuntimeWarning, match="skipped 1 unreadable"):
        eager = ImageFolderDataset(tmp_path, resolution=8, preload=True)
    assert eager.num_images == 2


def test_folder_errors_before_training(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolderDataset(tmp_path / "nope", resolution=8)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="contains no PNG or JPEG"):
        ImageFolderDataset(empty, resolution=8)
    (empty / "readme.txt").write_text("hi")
    with pytest.raises(ValueError, match="contains no PNG or JPEG"):
        open_dataset(empty, resolution=8)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"\x89PNG garbage")
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match="none of its 1 image files could be read"):
        ImageFolderDataset(bad, resolution=8)
    # a split's count is named as the split's, beside the folder's
    (bad / "y.png").write_bytes(b"\x89PNG more garbage")
    with pytest.warns(RuntimeWarning), pytest.raises(
            ValueError, match=r"none of its 1 image files \(held-out split; the folder holds 2\) could be read"):
        ImageFolderDataset(bad, resolution=8, split="test")
    f = tmp_path / "file.png"
    _rand_img(np.random.RandomState(0), 8, 8).save(f)
    with pytest.raises(NotADirectoryError, match="not a folder"):
        ImageFolderDataset(f, resolution=8)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_dataset(tmp_path / "missing", resolution=8)
    with pytest.raises(ValueError, match="channels"):
        ImageFolderDataset(tmp_path, resolution=8, channels=2)


def test_folder_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    arr = np.full((8, 8), 32768, dtype=np.uint16)  # half of full scale
    Image.fromarray(arr).save(tmp_path / "g16.png")
    x = load_image(tmp_path / "g16.png", 8, channels=1)
    assert abs(int(x[0, 0, 0]) - 128) <= 1


# ---------------------------------------------------------------------------- MNIST IDX

def _idx_bytes(code: int, shape, payload: bytes) -> bytes:
    return bytes([0, 0, code, len(shape)]) + struct.pack(">" + "I" * len(shape), *shape) + payload


@pytest.mark.parametrize("dtype,code", [("u1", 0x08), ("i1", 0x09), (">i2", 0x0B), (">i4", 0x0C),
                                        (">f4", 0x0D), (">f8", 0x0E)])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_against_hand_built_files(tmp_path, dtype, code, gz):
    rng = np.random.RandomState(code)
    arr = (rng.randn(3, 4, 5) * 50).astype(dtype)
    raw = _idx_bytes(code, arr.shape, arr.tobytes())
    p = tmp_path / "f.idx"  # no .gz suffix even when compressed: detection is by magic bytes
    p.write_bytes(gzip.compress(raw) if gz else raw)
    got = read_idx(p)
    assert got.shape == (3, 4, 5) and got.dtype.isnative
    np.testing.assert_array_equal(got, arr.astype(np.dtype(dtype).newbyteorder("=")))
    # write_idx is the inverse, byte for byte
    q = write_idx(tmp_path / ("w.idx.gz" if gz else "w.idx"), got)
    data = q.read_bytes()
    assert (gzip.decompress(data) if gz else data) == raw


def test_read_idx_rejects_bad_files(tmp_path):
    def check(data: bytes, match: str):
        p = tmp_path / "bad"
        p.write_bytes(data)
        with pytest.raises(ValueError, match=match):
            read_idx(p)

    payload = bytes(range(24))
    check(b"\x01\x00\x08\x01" + struct.pack(">I", 24) + payload, "not an IDX file")
    check(b"\x00\x00\x07\x01" + struct.pack(">I", 24) + payload, "unknown IDX type code 0x07")
    check(b"\x00\x00\x08\x00", "0 dimensions")
    check(b"\x00\x00\x08\x02" + struct.pack(">I", 4), "truncated IDX header")
    check(_idx_bytes(0x08, (5, 5), payload), "truncated")
    check(_idx_bytes(0x08, (4, 5), payload), "trailing bytes")
    check(b"\x00\x00", "too short")
    check(b"\x1f\x8b\x08\x00garbage", "corrupt gzip")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_idx(tmp_path / "missing")


@pytest.fixture
def mnist_dir(tmp_path):
    rng = np.random.RandomState(7)
    imgs = {s: rng.randint(0, 256, (n, 28, 28)).astype(np.uint8) for s, n in (("train", 12), ("test", 5))}
    labels = {s: rng.randint(0, 10, len(imgs[s])).astype(np.uint8) for s in imgs}
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", imgs["train"])
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels["train"])
    write_idx(tmp_path / "t10k-images.idx3-ubyte", imgs["test"])
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels["test"])
    return tmp_path, imgs, labels


def test_load_mnist_values_padding_and_labels(mnist_dir):
    root, imgs, labels = mnist_dir
    for split in ("train", "test"):
        x, y = load_mnist(root, split)  # [-1, 1] by default, as every model's encode takes
        assert x.shape == (len(imgs[split]), 1, 28, 28)
        np.testing.assert_allclose(x[:, 0].numpy(), imgs[split] / 127.5 - 1, atol=1e-6)
        x01, _ = load_mnist(root, split, value_range=(0, 1))
        np.testing.assert_allclose(x01[:, 0].numpy(), imgs[split] / 255.0, atol=1e-6)
        np.testing.assert_array_equal(y.numpy(), labels[split])
    x, _ = load_mnist(root, "train", value_range=(-1, 1), resolution=32)
    assert x.shape == (12, 1, 32, 32)
    np.testing.assert_allclose(x[:, 0, 2:30, 2:30].numpy(), imgs["train"] / 127.5 - 1, atol=1e-6)
    assert float(x[:, :, :2].abs().sub(1).abs().max()) == 0.0  # padding is the background value -1
    ds = open_dataset(root, resolution=32, split="test")
    assert isinstance(ds, MNISTDataset) and len(ds) == 5 and ds[0][0].shape == (1, 32, 32)
    assert float(ds[0][0].min()) >= -1.0


def test_load_mnist_inconsistent_files(mnist_dir):
    root, imgs, labels = mnist_dir
    write_idx(root / "train-labels-idx1-ubyte", labels["train"][:-1])
    with pytest.raises(ValueError, match="11 labels for 12 images"):
        load_mnist(root, "train")
    write_idx(root / "train-labels-idx1-ubyte", np.full(12, 10, np.uint8))
    with pytest.raises(ValueError, match="label 10 outside"):
        load_mnist(root, "train")
    write_idx(root / "train-labels-idx1-ubyte", labels["train"].astype(np.int32))
    with pytest.raises(ValueError, match="expected uint8 labels"):
        load_mnist(root, "train")
    with pytest.raises(ValueError, match="resolution"):
        load_mnist(root, "test", resolution=20)
    (root / "t10k-images.idx3-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="MNIST test images not found"):
        find_mnist_files(root, "test")


# ---------------------------------------------------------------------------- the stream

def test_stream_indices_are_concatenated_permutations():
    n = 7
    s = stream_indices(n, 0, 5 * n, seed=3)
    for e in range(5):
        assert sorted(s[e * n:(e + 1) * n].tolist()) == list(range(n))
    assert not torch.equal(s[:n], s[n:2 * n])  # epochs reshuffle
    assert torch.equal(stream_indices(n, 4, 12, seed=3), s[4:16])
    assert torch.equal(stream_indices(n, 3, 9, shuffle=False), torch.arange(3, 12) % n)
    assert not torch.equal(stream_indices(n, 0, 14, seed=4), s[:14])


def _data(n=23, flip=False):
    g = torch.Generator().manual_seed(0)
    return TensorImageDataset(torch.rand(n, 1, 4, 4, generator=g) * 2 - 1, torch.arange(n), flip=flip)


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_together_equal_one_process(world):
    ds = _data()
    single = DataStream(ds, batch_size=6, seed=5)
    ranks = [DataStream(ds, batch_size=6, rank=r, world_size=world, seed=5) for r in range(world)]
    for step in range(9):  # crosses several epoch boundaries of 23 items
        if step == 5:  # a level-of-detail switch changes the global batch
            single.set_batch_size(12)
            for s in ranks:
                s.set_batch_size(12)
        x, y = single.next()
        parts = [s.next() for s in ranks]
        assert all(p[0].shape[0] == x.shape[0] // world for p in parts)
        assert torch.equal(torch.cat([p[0] for p in parts]), x)
        assert torch.equal(torch.cat([p[1] for p in parts]), y)
        assert {s.state_dict()["position"] for s in ranks} == {single.position}


def test_exact_resume_from_state_dict_even_with_other_world_size():
    ds = _data(flip=True)
    a = DataStream(ds, batch_size=4, seed=11)
    for _ in range(5):
        a.next()
    state = a.state_dict()
    expected = [a.next() for _ in range(8)]
    b = DataStream(ds, batch_size=4, seed=999)
    b.load_state_dict(state)
    for x, y in expected:
        bx, by = b.next()
        assert torch.equal(bx, x) and torch.equal(by, y)
    r1 = DataStream(ds, batch_size=4, rank=1, world_size=2)
    r1.load_state_dict(state)
    assert torch.equal(r1.next()[0], expected[0][0][2:])
    with pytest.raises(ValueError, match="did the data change"):
        DataStream(_data(n=5), batch_size=4).load_state_dict(state)


def test_one_epoch_sees_every_item_once_including_mirrors():
    ds = _data(n=10, flip=True)
    s = DataStream(ds, batch_size=5, seed=1)
    xs = torch.cat([s.next()[0] for _ in range(4)])  # 20 = 2N items: every image and its mirror
    ref = torch.cat([ds.images, ds.images.flip(-1)])
    assert sorted(map(tuple, xs.flatten(1).tolist())) == sorted(map(tuple, ref.flatten(1).tolist()))


def test_worker_loader_matches_direct_loading():
    ds = _data()
    direct = DataStream(ds, batch_size=4, rank=1, world_size=2, seed=2)
    workers = DataStream(ds, batch_size=4, rank=1, world_size=2, seed=2, num_workers=2)
    for _ in range(3):
        workers.next()
    state = workers.state_dict()  # prefetching ran ahead, the state must not have
    assert state["position"] == 12
    direct.load_state_dict(state)
    for _ in range(4):
        assert torch.equal(direct.next()[0], workers.next()[0])
    sampler = ShardedStreamSampler(len(ds), 2, rank=1, world_size=2, seed=2, start=12)
    it = iter(sampler)
    first = [next(it) for _ in range(4)]
    glob = stream_indices(len(ds), 12, 8, seed=2).tolist()
    assert first == glob[2:4] + glob[6:8]


def test_stream_argument_errors():
    ds = _data()
    with pytest.raises(ValueError, match="batch_size"):
        DataStream(ds, batch_size=5, world_size=2)
    with pytest.raises(ValueError, match="rank"):
        DataStream(ds, batch_size=4, rank=2, world_size=2)
    with pytest.raises(ValueError, match="world_size"):
        DataStream(ds, batch_size=4, world_size=0)
    s = DataStream(ds, batch_size=4, world_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        s.set_batch_size(3)


def test_worker_loader_leaves_the_default_generator_alone():
    # G's noise comes from torch's default generator: a worker loader's iterator drew its base seed
    # there, so a resumed run (a new iterator) and a run with --workers took other noise than a
    # straight run and one without (a new user's torchrun trial)
    ds = _data()
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    stream = DataStream(ds, batch_size=4, seed=2, num_workers=2)
    stream.next()
    stream.set_batch_size(2)  # a new iterator, as at a change of level
    stream.next()
    assert torch.equal(torch.rand(3), expected)
