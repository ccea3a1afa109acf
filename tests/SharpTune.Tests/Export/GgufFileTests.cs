using SharpTune.Export;

namespace SharpTune.Tests.Export;

public sealed class GgufFileTests
{
    [Fact]
    public void WritesTypedMetadataAndAlignedTensorsThatReadBack()
    {
        var path = Path.Combine(TestPaths.TempDir(), "t.gguf");
        var a = Enumerable.Range(0, 3 * 5).Select(i => i * 0.5f).ToArray();   // 60 bytes: the next tensor needs padding
        var b = Enumerable.Range(0, 2 * 64).Select(i => (float)Math.Sin(i)).ToArray();
        GgufFile.Write(path,
        [
            KeyValuePair.Create("general.architecture", GgufValue.Str("llama")),
            KeyValuePair.Create("general.alignment", GgufValue.U32(32)),
            KeyValuePair.Create("x.eps", GgufValue.F32(1e-6)),
            KeyValuePair.Create("x.flag", GgufValue.Bool(true)),
            KeyValuePair.Create("x.tokens", GgufValue.Strings(["a", "b c", "ü"])),
            KeyValuePair.Create("x.types", GgufValue.Ints([1, 3, -2])),
        ],
        [new GgufTensor("a", [3, 5], GgmlType.F32, () => a), new GgufTensor("b", [2, 64], GgmlType.Q8_0, () => b)]);

        var read = GgufFile.Read(path);
        Assert.Equal(3u, read.Version);
        Assert.Equal("llama", read["general.architecture"].Value);
        Assert.Equal(1e-6f, read["x.eps"].Value);
        Assert.Equal(true, read["x.flag"].Value);
        Assert.Equal(["a", "b c", "ü"], ((List<object>)read["x.tokens"].Value).Cast<string>());
        Assert.Equal([1, 3, -2], ((List<object>)read["x.types"].Value).Cast<int>());
        Assert.Equal(0, read.DataOffset % 32);
        Assert.Equal([5L, 3L], read.Tensors[0].Dims);   // innermost first
        Assert.Equal(64, read.Tensors[1].Offset);       // 60 bytes rounded up to the alignment
        Assert.Equal(a, GgmlQuants.DequantizeRow(GgmlType.F32, GgufFile.ReadTensorBytes(path, read, read.Tensors[0]), 15));
        var q = GgmlQuants.DequantizeRow(GgmlType.Q8_0, GgufFile.ReadTensorBytes(path, read, read.Tensors[1]), 128);
        Assert.All(q.Zip(b), p => Assert.InRange(p.First - p.Second, -0.01, 0.01));
        Assert.Equal(read.DataOffset + 64 + 160, new FileInfo(path).Length);   // 136 data bytes padded to 160
    }
}
