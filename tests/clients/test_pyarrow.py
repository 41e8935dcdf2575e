"""pyarrow.fs.S3FileSystem (Arrow C++ / AWS SDK for C++) against an Alcove worker."""

from __future__ import annotations

import os
import uuid

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from alcove_helpers import ACCESS_KEY, SECRET_KEY, bucket_dir, md5hex, now_utc, tree


def mkfs(w, access_key=ACCESS_KEY, secret_key=SECRET_KEY) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(
        access_key=access_key,
        secret_key=secret_key,
        region="us-east-1",
        endpoint_override=f"127.0.0.1:{w.s3_port}",
        scheme="http",
        force_virtual_addressing=False,
        # small files go up as one PutObject (multipart is not part of the contract)
        allow_delayed_open=True,
        allow_bucket_creation=True,
        allow_bucket_deletion=True,
        connect_timeout=5,
        request_timeout=30,
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=1),
    )


@pytest.fixture(scope="module")
def fs(worker):
    return mkfs(worker)


def write(fs, path, data: bytes):
    with fs.open_output_stream(path) as f:
        f.write(data)


def test_write_read_info(fs, s3, bucket):
    data = os.urandom(400_000)
    write(fs, f"{bucket}/dir/blob.bin", data)
    assert s3.get_object(Bucket=bucket, Key="dir/blob.bin")["Body"].read() == data
    with fs.open_input_stream(f"{bucket}/dir/blob.bin") as f:
        assert f.read() == data
    info = fs.get_file_info(f"{bucket}/dir/blob.bin")
    assert info.type == pafs.FileType.File and info.size == len(data)
    assert abs((info.mtime - now_utc()).total_seconds()) < 30
    assert fs.get_file_info(f"{bucket}/dir").type == pafs.FileType.Directory
    assert fs.get_file_info(bucket).type == pafs.FileType.Directory
    with fs.open_input_file(f"{bucket}/dir/blob.bin") as f:  # ranged GETs
        assert f.size() == len(data)
        assert f.read_at(100, 1000) == data[1000:1100]
        assert f.read_at(10, len(data) - 10) == data[-10:]
        f.seek(300_000)
        assert f.read(5) == data[300_000:300_005]
    assert md5hex(fs.open_input_stream(f"{bucket}/dir/blob.bin").read()) == md5hex(data)


def test_selector_listing(fs, bucket):
    for k in ("a/b/c.txt", "a/d.txt", "e.txt"):
        write(fs, f"{bucket}/{k}", k.encode())
    infos = fs.get_file_info(pafs.FileSelector(bucket, recursive=True))
    got = sorted((i.path, i.type) for i in infos)
    D, F = pafs.FileType.Directory, pafs.FileType.File
    assert got == sorted([(f"{bucket}/a", D), (f"{bucket}/a/b", D), (f"{bucket}/a/b/c.txt", F),
                          (f"{bucket}/a/d.txt", F), (f"{bucket}/e.txt", F)])
    sizes = {i.path: i.size for i in infos if i.type == F}
    assert sizes[f"{bucket}/a/d.txt"] == len(b"a/d.txt")
    infos = fs.get_file_info(pafs.FileSelector(f"{bucket}/a", recursive=False))
    assert sorted((i.path, i.type) for i in infos) == [(f"{bucket}/a/b", D), (f"{bucket}/a/d.txt", F)]
    with pytest.raises(FileNotFoundError):
        fs.get_file_info(pafs.FileSelector(f"{bucket}/nothing-here"))
    assert fs.get_file_info(pafs.FileSelector(f"{bucket}/nothing-here", allow_not_found=True)) == []


def test_dirs_and_deletes(fs, s3, bucket, worker):
    fs.create_dir(f"{bucket}/newdir")  # writes the folder object "newdir/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["newdir/"]
    assert fs.get_file_info(f"{bucket}/newdir").type == pafs.FileType.Directory
    write(fs, f"{bucket}/newdir/f1", b"1")
    write(fs, f"{bucket}/newdir/sub/f2", b"2")
    fs.delete_file(f"{bucket}/newdir/f1")
    assert fs.get_file_info(f"{bucket}/newdir/f1").type == pafs.FileType.NotFound
    fs.delete_dir_contents(f"{bucket}/newdir")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert "newdir/sub/f2" not in keys
    fs.delete_dir(f"{bucket}/newdir")
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []
    assert tree(bucket_dir(worker, bucket)) == {}


def test_missing(fs, bucket):
    with pytest.raises(FileNotFoundError):
        fs.open_input_stream(f"{bucket}/missing")
    with pytest.raises(FileNotFoundError):
        fs.open_input_file(f"{bucket}/missing")
    assert fs.get_file_info(f"{bucket}/missing").type == pafs.FileType.NotFound
    nob = f"nob-{uuid.uuid4().hex[:8]}"
    assert fs.get_file_info(nob).type == pafs.FileType.NotFound
    assert fs.get_file_info(f"{nob}/k").type == pafs.FileType.NotFound
    with pytest.raises(FileNotFoundError):
        fs.open_input_stream(f"{nob}/k")


def test_bucket_create_delete(fs, worker, s3):
    name = f"arrow-{uuid.uuid4().hex[:10]}"
    fs.create_dir(name)
    s3.head_bucket(Bucket=name)
    assert (worker.root / name).is_dir()
    buckets = [i.path for i in fs.get_file_info(pafs.FileSelector("/", recursive=False))]
    assert name in buckets
    fs.delete_dir(name)
    assert not (worker.root / name).exists()


def test_parquet_roundtrip(fs, bucket):
    table = pa.table({
        "id": pa.array(range(50_000), pa.int64()),
        "name": pa.array([f"row-{i}" for i in range(50_000)]),
        "value": pa.array([i * 0.5 for i in range(50_000)]),
    })
    pq.write_table(table, f"{bucket}/pq/one.parquet", filesystem=fs, row_group_size=10_000)
    back = pq.read_table(f"{bucket}/pq/one.parquet", filesystem=fs)
    assert back.equals(table)
    # column projection + row-group reads use ranged GETs
    part = pq.read_table(f"{bucket}/pq/one.parquet", filesystem=fs, columns=["value"])
    assert part.column("value").to_pylist()[:3] == [0.0, 0.5, 1.0]
    pf = pq.ParquetFile(fs.open_input_file(f"{bucket}/pq/one.parquet"))
    assert pf.metadata.num_rows == 50_000 and pf.metadata.num_row_groups == 5
    assert pf.read_row_group(3).column("id")[0].as_py() == 30_000


def test_dataset_partitioned(fs, bucket):
    table = pa.table({"k": ["x", "y", "x", "z"], "v": [1, 2, 3, 4]})
    ds.write_dataset(table, f"{bucket}/ds", format="parquet", filesystem=fs,
                     partitioning=ds.partitioning(pa.schema([("k", pa.string())]), flavor="hive"))
    files = sorted(i.path for i in fs.get_file_info(pafs.FileSelector(f"{bucket}/ds", recursive=True))
                   if i.type == pafs.FileType.File)
    assert [f.split("/")[-2] for f in files] == ["k=x", "k=y", "k=z"]
    back = ds.dataset(f"{bucket}/ds", format="parquet", filesystem=fs, partitioning="hive").to_table()
    rows = sorted(zip(back.column("k").to_pylist(), back.column("v").to_pylist()))
    assert rows == [("x", 1), ("x", 3), ("y", 2), ("z", 4)]


def test_special_names(fs, s3, bucket):
    names = ["sp ace.txt", "pl+us.txt", "\u00fcn\u00ef/\u65e5.txt", "amp&.txt"]
    for n in names:
        write(fs, f"{bucket}/{n}", n.encode())
    for n in names:
        assert s3.get_object(Bucket=bucket, Key=n)["Body"].read() == n.encode()
        with fs.open_input_stream(f"{bucket}/{n}") as f:
            assert f.read() == n.encode()


def test_sigv4(sigv4_worker):
    good = mkfs(sigv4_worker)
    name = f"arrowsig-{uuid.uuid4().hex[:8]}"
    good.create_dir(name)
    write(good, f"{name}/x y/z+1.bin", b"signed arrow")
    with good.open_input_file(f"{name}/x y/z+1.bin") as f:
        assert f.read_at(5, 7) == b"arrow"
    bad = mkfs(sigv4_worker, secret_key="wrong")
    with pytest.raises(OSError) as ei:
        bad.open_input_stream(f"{name}/x y/z+1.bin").read()
    # the first call is a HEAD (no error body): the SDK reports the 403 as ACCESS_DENIED
    assert "ACCESS_DENIED" in str(ei.value), str(ei.value)
    with pytest.raises(OSError) as ei:
        write(bad, f"{name}/evil.bin", b"x")
    assert "SIGNATURE_DOES_NOT_MATCH" in str(ei.value), str(ei.value)
    assert good.get_file_info(f"{name}/evil.bin").type == pafs.FileType.NotFound


def test_parquet_dataset_second_pass_is_served_by_the_cache(worker, counted_mount):
    """A data set read twice through an S3 mount: the second pass reads no object from the
    remote (listings still go to it: they are never cached)."""
    fs = mkfs(worker)
    root = f"{counted_mount.name}/sales"
    for part in range(4):
        table = pa.table({"day": [part] * 50_000, "amount": [float(i) for i in range(50_000)]})
        pq.write_table(table, f"{root}/part-{part}.parquet", filesystem=fs)
    first = ds.dataset(root, filesystem=fs, format="parquet").to_table()
    gets_after_first = counted_mount.object_gets()
    assert gets_after_first > 0
    second = ds.dataset(root, filesystem=fs, format="parquet").to_table()
    assert second.equals(first) and second.num_rows == 200_000
    assert counted_mount.object_gets() == gets_after_first, "the second pass read every byte from the cache"
