using SharpTune.SafeTensors;
using static TorchSharp.torch;

namespace SharpTune.Tests.SafeTensors;

public sealed class SafeTensorsReaderTests
{
    private static string LlamaFixture => Path.Combine(TestPaths.Fixtures, "hf-tiny", "llama", "model.safetensors");

    [Fact]
    public void Reads_the_hf_fixture_written_by_python()
    {
        // Expected values read independently with python3 struct/json from the same file.
        using var checkpoint = SafeTensorsCheckpoint.Open(LlamaFixture);
        Assert.Equal(21, checkpoint.Names.Count);
        Assert.Equal("pt", checkpoint.Metadata["format"]);

        var info = checkpoint.Info("model.layers.1.self_attn.k_proj.weight");
        Assert.Equal(SafeDType.F32, info.DType);
        Assert.Equal([32L, 64L], info.Shape);
        Assert.Equal(8 + 2136 + 377856, info.DataOffset);
        Assert.Equal(8192, info.ByteLength);

        using var embed = checkpoint.Load("model.embed_tokens.weight");
        Assert.Equal(ScalarType.Float32, embed.dtype);
        Assert.Equal([256L, 64L], embed.shape);
        Assert.Equal(0.17402052879333496f, embed[0, 0].item<float>());
        Assert.Equal(0.0348738431930542f, embed[0, 1].item<float>());
        Assert.Equal(-0.1174766793847084f, embed[0, 3].item<float>());
        Assert.Equal(0.10562465339899063f, embed[255, 63].item<float>());
        Assert.Equal(-45.4325165467435, embed.to_type(ScalarType.Float64).sum().item<double>(), 1e-9);

        using var kProj = checkpoint.Load("model.layers.1.self_attn.k_proj.weight", [32, 64]);
        Assert.Equal(-0.030206797644495964f, kProj[0, 0].item<float>());
        Assert.Equal(0.0025869340170174837f, kProj[31, 63].item<float>());
        Assert.Equal(6.106483351642964, kProj.to_type(ScalarType.Float64).sum().item<double>(), 1e-9);
    }

    [Fact]
    public void Opens_a_model_folder_and_converts_on_load()
    {
        using var checkpoint = SafeTensorsCheckpoint.Open(Path.GetDirectoryName(LlamaFixture)!);
        using var norm = checkpoint.Load("model.norm.weight", ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, norm.dtype);
        Assert.Equal([64L], norm.shape);
        // 0.8586544990539551 rounded to bfloat16 (8 significant bits): 0.859375.
        Assert.Equal(0.859375f, norm[0].to_type(ScalarType.Float32).item<float>());
        Assert.Equal(1.015625f, norm[1].to_type(ScalarType.Float32).item<float>());
    }

    [Fact]
    public void Reads_files_whose_header_is_not_padded()
    {
        // Older writers did not pad the header, so data may start at any byte; this one starts at 8 + 55 = 63.
        var path = Path.Combine(TestPaths.TempDir(), "unpadded.safetensors");
        var header = System.Text.Encoding.ASCII.GetBytes("{\"xy\":{\"dtype\":\"I16\",\"shape\":[3],\"data_offsets\":[0,6]}}");
        Assert.Equal(55, header.Length);
        var bytes = new List<byte>(BitConverter.GetBytes((ulong)header.Length));
        bytes.AddRange(header);
        bytes.AddRange([0x01, 0x00, 0xFF, 0xFF, 0x00, 0x80]); // 1, -1, -32768
        File.WriteAllBytes(path, bytes.ToArray());

        using var checkpoint = SafeTensorsCheckpoint.Open(path);
        Assert.Equal(63, checkpoint.Info("xy").DataOffset);
        using var x = checkpoint.Load("xy");
        Assert.Equal(new short[] { 1, -1, short.MinValue }, x.data<short>().ToArray());
    }

    [Fact]
    public void Tensors_larger_than_one_copy_window_load_whole()
    {
        // 18M int32 = 72 MB: more than the 64 MiB read window and several 16 MiB write windows.
        var path = Path.Combine(TestPaths.TempDir(), "big.safetensors");
        const long count = 18_000_000;
        using (var big = arange(count, ScalarType.Int32))
            SafeTensorsWriter.Save(path, [new("big", big)]);
        using var checkpoint = SafeTensorsCheckpoint.Open(path);
        using var loaded = checkpoint.Load("big");
        Assert.Equal([count], loaded.shape);
        const long windowElements = (64L << 20) / 4;
        Assert.Equal(windowElements - 1, loaded[windowElements - 1].item<int>());
        Assert.Equal(windowElements, loaded[windowElements].item<int>());
        Assert.Equal(count - 1, loaded[count - 1].item<int>());
        using var expected = arange(count, ScalarType.Int32);
        Assert.Equal(0L, loaded.ne(expected).sum().item<long>());
    }
}
