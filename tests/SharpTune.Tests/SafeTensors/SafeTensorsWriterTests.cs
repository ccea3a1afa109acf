using System.Buffers.Binary;
using System.Text;
using SharpTune.SafeTensors;
using static TorchSharp.torch;

namespace SharpTune.Tests.SafeTensors;

public sealed class SafeTensorsWriterTests
{
    [Fact]
    public void Tiny_file_matches_the_bytes_python_safetensors_writes()
    {
        var path = Path.Combine(TestPaths.TempDir(), "a.safetensors");
        using var a = tensor(new float[] { 1, 2 });
        SafeTensorsWriter.Save(path, [new("a", a)]);

        // {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} is 54 bytes; two spaces pad it to 56.
        var expected = new List<byte> { 56, 0, 0, 0, 0, 0, 0, 0 };
        expected.AddRange(Encoding.ASCII.GetBytes("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}  "));
        expected.AddRange([0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0x40]); // 1.0f, 2.0f little-endian
        Assert.Equal(expected.ToArray(), File.ReadAllBytes(path));
    }

    [Fact]
    public void Header_is_sorted_like_python_and_aligned_to_8_bytes()
    {
        var path = Path.Combine(TestPaths.TempDir(), "sorted.safetensors");
        using var b = tensor(new float[] { 1 });
        using var a = tensor(new float[] { 2 });
        using var c = tensor(new long[] { 3 });
        using var d = tensor(new bool[] { true, false, true });
        using var e = tensor(new float[] { 1 }).to_type(ScalarType.BFloat16);
        var metadata = new Dictionary<string, string> { ["z"] = "1", ["format"] = "pt" };
        SafeTensorsWriter.Save(path, [new("b", b), new("a", a), new("c", c), new("d", d), new("e", e)], metadata);

        var bytes = File.ReadAllBytes(path);
        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, headerLength % 8);
        var header = Encoding.UTF8.GetString(bytes, 8, headerLength);
        // Python: __metadata__ first, then descending dtype alignment (I64, F32, BF16, BOOL), then name.
        const string json = "{\"__metadata__\":{\"format\":\"pt\",\"z\":\"1\"},"
            + "\"c\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
            + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]},"
            + "\"e\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[16,18]},"
            + "\"d\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[18,21]}}";
        Assert.Equal(json + new string(' ', headerLength - json.Length), header);
        Assert.True(headerLength - json.Length < 8);
        Assert.Equal(8 + headerLength + 21, bytes.Length);
        // I64 3, then float 2 (a) before float 1 (b), bf16 1.0 = 0x3F80, then the bools.
        Assert.Equal(new byte[] { 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0x80, 0x3F, 0x80, 0x3F, 1, 0, 1 }, bytes[(8 + headerLength)..]);

        using var checkpoint = SafeTensorsCheckpoint.Open(path);
        Assert.Equal(["c", "a", "b", "e", "d"], checkpoint.Names);
        Assert.Equal("1", checkpoint.Metadata["z"]);
    }

    [Fact]
    public void Every_dtype_round_trips_with_exact_bytes_and_values()
    {
        var path = Path.Combine(TestPaths.TempDir(), "dtypes.safetensors");
        var doubles = new[] { 1.5, -2.25, 1e300 };
        var floats = new[] { 1f, -0.5f, 3.4028235e38f };
        var halves = new[] { 0.5f, -2f, 65504f };
        var bfloats = new[] { 1f, -3f, 0.15625f };
        var longs = new[] { long.MinValue, 0L, long.MaxValue };
        var ints = new[] { int.MinValue, 7, int.MaxValue };
        var shorts = new short[] { short.MinValue, -1, short.MaxValue };
        var sbytes = new sbyte[] { -128, 5, 127 };
        var ubytes = new byte[] { 0, 128, 255 };
        var bools = new[] { true, false, true };

        var tensors = new Dictionary<string, Tensor>
        {
            ["f64"] = tensor(doubles),
            ["f32"] = tensor(floats),
            ["f16"] = tensor(halves).to_type(ScalarType.Float16),
            ["bf16"] = tensor(bfloats).to_type(ScalarType.BFloat16),
            ["i64"] = tensor(longs),
            ["i32"] = tensor(ints),
            ["i16"] = tensor(shorts),
            ["i8"] = tensor(sbytes),
            ["u8"] = tensor(ubytes),
            ["bool"] = tensor(bools),
        };
        SafeTensorsWriter.Save(path, tensors);

        var expectedBytes = new Dictionary<string, byte[]>
        {
            ["f64"] = doubles.SelectMany(BitConverter.GetBytes).ToArray(),
            ["f32"] = floats.SelectMany(BitConverter.GetBytes).ToArray(),
            ["f16"] = [0x00, 0x38, 0x00, 0xC0, 0xFF, 0x7B],
            ["bf16"] = [0x80, 0x3F, 0x40, 0xC0, 0x20, 0x3E],
            ["i64"] = longs.SelectMany(BitConverter.GetBytes).ToArray(),
            ["i32"] = ints.SelectMany(BitConverter.GetBytes).ToArray(),
            ["i16"] = shorts.SelectMany(BitConverter.GetBytes).ToArray(),
            ["i8"] = [0x80, 0x05, 0x7F],
            ["u8"] = [0, 128, 255],
            ["bool"] = [1, 0, 1],
        };
        var file = File.ReadAllBytes(path);
        using var checkpoint = SafeTensorsCheckpoint.Open(path);
        var expectedTypes = new Dictionary<string, (SafeDType, ScalarType)>
        {
            ["f64"] = (SafeDType.F64, ScalarType.Float64), ["f32"] = (SafeDType.F32, ScalarType.Float32),
            ["f16"] = (SafeDType.F16, ScalarType.Float16), ["bf16"] = (SafeDType.BF16, ScalarType.BFloat16),
            ["i64"] = (SafeDType.I64, ScalarType.Int64), ["i32"] = (SafeDType.I32, ScalarType.Int32),
            ["i16"] = (SafeDType.I16, ScalarType.Int16), ["i8"] = (SafeDType.I8, ScalarType.Int8),
            ["u8"] = (SafeDType.U8, ScalarType.Byte), ["bool"] = (SafeDType.BOOL, ScalarType.Bool),
        };
        foreach (var (name, bytes) in expectedBytes)
        {
            var info = checkpoint.Info(name);
            Assert.Equal(expectedTypes[name].Item1, info.DType);
            Assert.Equal([3L], info.Shape);
            Assert.Equal(bytes, file.AsSpan((int)info.DataOffset, (int)info.ByteLength).ToArray());
            using var loaded = checkpoint.Load(name);
            Assert.Equal(expectedTypes[name].Item2, loaded.dtype);
            Assert.Equal(bytes, loaded.bytes.ToArray());
        }

        using (var f64 = checkpoint.Load("f64")) Assert.Equal(doubles, f64.data<double>().ToArray());
        using (var f32 = checkpoint.Load("f32")) Assert.Equal(floats, f32.data<float>().ToArray());
        using (var f16 = checkpoint.Load("f16", ScalarType.Float32)) Assert.Equal(halves, f16.data<float>().ToArray());
        using (var bf16 = checkpoint.Load("bf16", ScalarType.Float32)) Assert.Equal(bfloats, bf16.data<float>().ToArray());
        using (var i64 = checkpoint.Load("i64")) Assert.Equal(longs, i64.data<long>().ToArray());
        using (var i32 = checkpoint.Load("i32")) Assert.Equal(ints, i32.data<int>().ToArray());
        using (var i16 = checkpoint.Load("i16")) Assert.Equal(shorts, i16.data<short>().ToArray());
        using (var i8 = checkpoint.Load("i8")) Assert.Equal(sbytes, i8.data<sbyte>().ToArray());
        using (var u8 = checkpoint.Load("u8")) Assert.Equal(ubytes, u8.data<byte>().ToArray());
        using (var b = checkpoint.Load("bool")) Assert.Equal(bools, b.data<bool>().ToArray());
        foreach (var t in tensors.Values) t.Dispose();
    }

    [Fact]
    public void Writes_strided_views_and_scalars_and_empty_tensors()
    {
        var path = Path.Combine(TestPaths.TempDir(), "views.safetensors");
        using var matrix = arange(6, ScalarType.Float32).reshape(2, 3);
        using var transposed = matrix.t(); // (3, 2), not contiguous
        using var scalar = tensor(7.5f).reshape(Array.Empty<long>());
        using var empty = zeros(0, 4);
        SafeTensorsWriter.Save(path, [new("t", transposed), new("s", scalar), new("e", empty)]);

        using var checkpoint = SafeTensorsCheckpoint.Open(path);
        using var t = checkpoint.Load("t");
        Assert.Equal([3L, 2L], t.shape);
        Assert.Equal(new float[] { 0, 3, 1, 4, 2, 5 }, t.data<float>().ToArray());
        using var s = checkpoint.Load("s");
        Assert.Empty(s.shape);
        Assert.Equal(7.5f, s.item<float>());
        using var e = checkpoint.Load("e");
        Assert.Equal([0L, 4L], e.shape);
        Assert.Equal(0, checkpoint.Info("e").ByteLength);
    }

    [Fact]
    public void Sharded_save_writes_transformers_names_and_index_and_reopens()
    {
        var dir = TestPaths.TempDir();
        using var a = arange(100, ScalarType.Float32);          // 400 bytes
        using var b = arange(100, 200, ScalarType.Float32);     // 400 bytes
        using var big = full(300, 2.5f);                        // 1200 bytes: over the limit, alone
        using var c = tensor(new long[] { 11, 12 });            // 16 bytes
        SafeTensorsWriter.SaveSharded(dir, [new("w.a", a), new("w.b", b), new("w.big", big), new("w.c", c)], maxShardBytes: 1000);

        // huggingface_hub's split: the oversized tensor is closed into its own shard at once, while a, b and c keep filling the open one.
        Assert.Equal(
            ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"],
            Directory.GetFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        const string index = "{\n  \"metadata\": {\n    \"total_size\": 2016\n  },\n  \"weight_map\": {\n"
            + "    \"w.a\": \"model-00002-of-00002.safetensors\",\n"
            + "    \"w.b\": \"model-00002-of-00002.safetensors\",\n"
            + "    \"w.big\": \"model-00001-of-00002.safetensors\",\n"
            + "    \"w.c\": \"model-00002-of-00002.safetensors\"\n  }\n}\n";
        Assert.Equal(index, File.ReadAllText(Path.Combine(dir, "model.safetensors.index.json")));

        using (var checkpoint = SafeTensorsCheckpoint.Open(dir))
        {
            Assert.Equal(["w.a", "w.b", "w.big", "w.c"], checkpoint.Names.Order(StringComparer.Ordinal));
            Assert.Equal("pt", checkpoint.Metadata["format"]);
            Assert.EndsWith("model-00001-of-00002.safetensors", checkpoint.Info("w.big").FilePath);
            Assert.EndsWith("model-00002-of-00002.safetensors", checkpoint.Info("w.c").FilePath);
            using var loadedB = checkpoint.Load("w.b");
            Assert.Equal(199f, loadedB[99].item<float>());
            Assert.Equal(14950f, loadedB.sum().item<float>()); // 100 + ... + 199
            using var loadedBig = checkpoint.Load("w.big", [300]);
            Assert.Equal(750f, loadedBig.sum().item<float>());
            using var loadedC = checkpoint.Load("w.c");
            Assert.Equal(new long[] { 11, 12 }, loadedC.data<long>().ToArray());
        }

        // Saving again as one shard leaves a single file: the old shards and index are removed.
        SafeTensorsWriter.SaveSharded(dir, [new("w.a", a)], SafeTensorsWriter.ParseShardSize("5GB"));
        Assert.Equal(["model.safetensors"], Directory.GetFiles(dir).Select(Path.GetFileName));
        using var single = SafeTensorsCheckpoint.Open(dir);
        Assert.Equal(["w.a"], single.Names);
    }

    [Fact]
    public void Save_replaces_an_existing_file_and_leaves_no_temp_files()
    {
        var dir = TestPaths.TempDir();
        var path = Path.Combine(dir, "x.safetensors");
        File.WriteAllText(path, "old");
        using var x = tensor(new int[] { 42 });
        SafeTensorsWriter.Save(path, [new("x", x)]);
        Assert.Equal(["x.safetensors"], Directory.GetFiles(dir).Select(Path.GetFileName));
        using var checkpoint = SafeTensorsCheckpoint.Open(path);
        using var loaded = checkpoint.Load("x");
        Assert.Equal(42, loaded.item<int>());
    }

    [Fact]
    public void A_failed_save_keeps_the_previous_file()
    {
        var dir = TestPaths.TempDir();
        var path = Path.Combine(dir, "x.safetensors");
        File.WriteAllText(path, "previous");
        using var complex = zeros(2, dtype: ScalarType.ComplexFloat32);
        var error = Assert.Throws<InvalidInputException>(() => SafeTensorsWriter.Save(path, [new("c", complex)]));
        Assert.Equal($"{path}: tensor 'c' has dtype ComplexFloat32, which safetensors cannot store here (allowed: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)", error.Message);
        Assert.Equal("previous", File.ReadAllText(path));
        Assert.Equal(["x.safetensors"], Directory.GetFiles(dir).Select(Path.GetFileName));
    }

    [Theory]
    [InlineData("5GB", 5_000_000_000L)]
    [InlineData("500MB", 500_000_000L)]
    [InlineData("100KB", 100_000L)]
    [InlineData("2GiB", 2_147_483_648L)]
    [InlineData("10MiB", 10_485_760L)]
    [InlineData("1KiB", 1024L)]
    [InlineData("5Gb", 625_000_000L)]
    [InlineData("8mb", 1_000_000L)]
    [InlineData("123456", 123456L)]
    [InlineData(" 5gb ", 625_000_000L)]
    public void Parses_shard_sizes_like_transformers(string text, long bytes)
    {
        Assert.Equal(bytes, SafeTensorsWriter.ParseShardSize(text));
    }

    [Theory]
    [InlineData("5 TB")]
    [InlineData("abc")]
    [InlineData("1.5GB")]
    [InlineData("")]
    public void Rejects_unparseable_shard_sizes(string text)
    {
        var error = Assert.Throws<InvalidInputException>(() => SafeTensorsWriter.ParseShardSize(text));
        Assert.Equal($"max_shard_size '{text}' is not a size; use an integer number of bytes or an integer followed by GB, MB, KB, GiB, MiB or KiB (e.g. '5GB')", error.Message);
    }

    [Fact]
    public void Rejects_a_zero_shard_size()
    {
        var error = Assert.Throws<InvalidInputException>(() => SafeTensorsWriter.ParseShardSize("0MB"));
        Assert.Equal("max_shard_size '0MB' must be larger than zero bytes", error.Message);
    }

    /// <summary>
    /// The streamed save (ZeRO-3's consolidated model) writes the same bytes as the eager one, sharded and not, while it
    /// produces each tensor once, in <see cref="SafeTensorsWriter.StreamOrder"/>, and never holds two at a time.
    /// </summary>
    [Theory]
    [InlineData(1000L)]
    [InlineData(5_000_000_000L)]
    public void Streamed_save_writes_the_eager_files_byte_for_byte_holding_one_tensor_at_a_time(long maxShardBytes)
    {
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>
        {
            ["model.layers.10.w"] = arange(100, ScalarType.Float32),
            ["model.layers.2.w"] = arange(100, 200, ScalarType.Float32),
            ["lm_head.weight"] = full(new long[] { 30, 10 }, 2.5f),
            ["model.norm.weight"] = ones(7, ScalarType.BFloat16),
            ["model.ids"] = tensor(new long[] { 11, 12 }),
            ["model.empty"] = zeros(0, 4),
        };
        var eager = TestPaths.TempDir();
        SafeTensorsWriter.SaveSharded(eager, tensors.Select(kv => KeyValuePair.Create(kv.Key, kv.Value)), maxShardBytes);

        var produced = new List<string>();
        var handles = new List<Tensor>();
        int mostAlive = 0;
        var streamed = tensors.Select(kv => new StreamedTensor(kv.Key, kv.Value.dtype, kv.Value.shape, () =>
        {
            produced.Add(kv.Key);
            var copy = kv.Value.clone().DetachFromDisposeScope();
            handles.Add(copy);
            mostAlive = Math.Max(mostAlive, handles.Count(h => !h.IsInvalid));
            return copy;
        })).ToList();
        var order = SafeTensorsWriter.StreamOrder(streamed, maxShardBytes).Select(t => t.Name).ToList();
        var dir = TestPaths.TempDir();
        SafeTensorsWriter.SaveShardedStreamed(dir, streamed, maxShardBytes);

        Assert.Equal(order, produced);
        Assert.Equal(tensors.Count, produced.Distinct().Count());
        Assert.Equal(1, mostAlive);
        Assert.All(handles, h => Assert.True(h.IsInvalid));   // the writer disposed each one
        var files = Directory.GetFiles(eager).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(files, Directory.GetFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(maxShardBytes == 1000 ? 3 : 1, files.Count);
        foreach (var file in files) Assert.Equal(File.ReadAllBytes(Path.Combine(eager, file!)), File.ReadAllBytes(Path.Combine(dir, file!)));
    }

    [Fact]
    public void Streamed_tensor_that_differs_from_its_declaration_is_refused()
    {
        using var scope = NewDisposeScope();
        var dir = TestPaths.TempDir();
        var streamed = new[] { new StreamedTensor("w", ScalarType.Float32, [4], () => zeros(5)) };
        var error = Assert.Throws<InvalidOperationException>(() => SafeTensorsWriter.SaveShardedStreamed(dir, streamed, 1000));
        Assert.Contains("'w' was declared F32 [4] but produced Float32 [5]", error.Message);
        Assert.Empty(Directory.GetFiles(dir, "*.safetensors"));
    }
}
