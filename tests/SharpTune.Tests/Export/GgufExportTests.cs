using SharpTune.Export;
using SharpTune.Modeling;
using SharpTune.SafeTensors;
using static TorchSharp.torch;

namespace SharpTune.Tests.Export;

/// <summary>What the exporter writes, read back with SharpTune's own GGUF reader (no llama.cpp needed).</summary>
public sealed class GgufExportTests
{
    internal static string Fixture(string name) => Path.Combine(TestPaths.Fixtures, "hf-tiny", name);
    internal static string ByteTokenizer => Path.Combine(TestPaths.Fixtures, "byte-tokenizer");

    private static (string Path, GgufFile.Contents Contents) Export(string model, string outType = "f32")
    {
        var path = Path.Combine(TestPaths.TempDir(), "m.gguf");
        var (code, _, err) = CliRunner.Run("export", "--model", model, "--tokenizer", ByteTokenizer, "--outtype", outType, "--out", path);
        Assert.True(code == 0, err);
        return (path, GgufFile.Read(path));
    }

    private static float[] TensorValues(string path, GgufFile.Contents c, string name)
    {
        var info = c.Tensors.Single(t => t.Name == name);
        long n = info.Dims.Aggregate(1L, (a, b) => a * b);
        return GgmlQuants.DequantizeRow(info.Type, GgufFile.ReadTensorBytes(path, c, info), (int)n);
    }

    private static float[] HfValues(string model, string key)
    {
        using var checkpoint = SafeTensorsCheckpoint.Open(model);
        using var t = checkpoint.Load(key, ScalarType.Float32);
        return t.contiguous().data<float>().ToArray();
    }

    [Fact]
    public void LlamaTensorsGetLlamaCppNamesAndRopeInterleavedQkRows()
    {
        var (path, c) = Export(Fixture("llama"));
        Assert.Equal("llama", c["general.architecture"].Value);
        Assert.Equal(3 + 2 * 9, c.Tensors.Count);
        Assert.Contains(c.Tensors, t => t.Name == "blk.1.ffn_down.weight" && t.Dims.SequenceEqual([128L, 64L]));
        Assert.Equal(4u, c["llama.attention.head_count"].Value);
        Assert.Equal(2u, c["llama.attention.head_count_kv"].Value);
        // attn_k row (head h, pair i, half j) = HF k_proj row h·16 + j·8 + i.
        var hf = HfValues(Fixture("llama"), "model.layers.0.self_attn.k_proj.weight");
        var gguf = TensorValues(path, c, "blk.0.attn_k.weight");
        for (int h = 0; h < 2; h++)
            for (int i = 0; i < 8; i++)
                for (int j = 0; j < 2; j++)
                    Assert.Equal(hf.AsSpan((h * 16 + j * 8 + i) * 64, 64).ToArray(), gguf.AsSpan((h * 16 + i * 2 + j) * 64, 64).ToArray());
        Assert.Equal(HfValues(Fixture("llama"), "model.layers.0.self_attn.v_proj.weight"), TensorValues(path, c, "blk.0.attn_v.weight"));
    }

    [Fact]
    public void GemmaNormsGainOneAndGemma2FoldsItsQueryScaleIntoAttnQ()
    {
        var (path, c) = Export(Fixture("gemma2"));
        var hfNorm = HfValues(Fixture("gemma2"), "model.layers.1.pre_feedforward_layernorm.weight");
        Assert.Equal(hfNorm.Select(v => v + 1), TensorValues(path, c, "blk.1.ffn_norm.weight"));
        Assert.Contains(c.Tensors, t => t.Name == "blk.1.post_ffw_norm.weight");
        Assert.Equal(20f, c["gemma2.attn_logit_softcapping"].Value);
        Assert.Equal(5f, c["gemma2.final_logit_softcapping"].Value);
        Assert.Equal(4u, c["gemma2.attention.sliding_window"].Value);
        // HF scales q·k by query_pre_attn_scalar^-0.5 = 32^-0.5, llama.cpp by head_dim^-0.5 = 16^-0.5.
        var hfQ = HfValues(Fixture("gemma2"), "model.layers.0.self_attn.q_proj.weight");
        var q = TensorValues(path, c, "blk.0.attn_q.weight");
        Assert.All(hfQ.Zip(q), p => Assert.Equal(p.First * Math.Sqrt(16.0 / 32.0), p.Second, 1e-6));
    }

    [Fact]
    public void Llama3RopeScalingBecomesRopeFreqsFactors()
    {
        var (path, c) = Export(Fixture("llama31"));
        var factors = TensorValues(path, c, "rope_freqs.weight");
        Assert.Equal(8, factors.Length);
        Assert.Equal(1f, factors[0]);    // short wavelengths are kept
        Assert.Equal(8f, factors[^1]);   // long ones divided by factor 8
        Assert.True(factors.Zip(factors.Skip(1)).All(p => p.First <= p.Second));
    }

    [Fact]
    public void TokenizerMetadataCarriesVocabularySpecialsAndTemplate()
    {
        var path = Path.Combine(TestPaths.TempDir(), "chat.gguf");
        var model = Path.Combine(TestPaths.RepoRoot, "examples", "models", "tiny-chat");
        var (code, _, err) = CliRunner.Run("export", "--model", model, "--outtype", "q8_0", "--out", path);
        Assert.True(code == 0, err);
        var c = GgufFile.Read(path);
        Assert.Equal("gpt2", c["tokenizer.ggml.model"].Value);
        Assert.Equal("gpt-2", c["tokenizer.ggml.pre"].Value);
        var tokens = (List<object>)c["tokenizer.ggml.tokens"].Value;
        Assert.Equal(259, tokens.Count);
        Assert.Equal("<|im_end|>", tokens[258]);
        Assert.Equal(3, ((List<object>)c["tokenizer.ggml.token_type"].Value)[258]);   // control
        Assert.Equal(258u, c["tokenizer.ggml.eos_token_id"].Value);
        Assert.Equal(256u, c["tokenizer.ggml.padding_token_id"].Value);
        Assert.Equal(false, c["tokenizer.ggml.add_bos_token"].Value);
        Assert.StartsWith("{% for message in messages %}", (string)c["tokenizer.chat_template"].Value);
        Assert.Equal(7u, c["general.file_type"].Value);
        Assert.Equal(GgmlType.Q8_0, c.Tensors.Single(t => t.Name == "token_embd.weight").Type);
        Assert.Equal(GgmlType.F32, c.Tensors.Single(t => t.Name == "output_norm.weight").Type);
    }

    [Fact]
    public void RefusesWhatGgufCannotExpress()
    {
        var dir = TestPaths.TempDir();
        var (code, _, err) = CliRunner.Run("export", "--model", Fixture("llama"), "--tokenizer", ByteTokenizer, "--outtype", "q3_k", "--out", Path.Combine(dir, "x.gguf"));
        Assert.Equal(2, code);
        Assert.Contains("--outtype: 'q3_k' is not supported; allowed: f32, f16, bf16, q8_0, q4_0, q4_k_m", err);

        (code, _, err) = CliRunner.Run("export", "--model", Fixture("llama"), "--outtype", "f16", "--out", Path.Combine(dir, "x.gguf"));
        Assert.Equal(2, code);
        Assert.Contains("no tokenizer.json", err);

        var dynamic = Path.Combine(dir, "dynamic");
        Directory.CreateDirectory(dynamic);
        foreach (var f in Directory.GetFiles(Fixture("llama"))) File.Copy(f, Path.Combine(dynamic, Path.GetFileName(f)));
        var config = File.ReadAllText(Path.Combine(dynamic, "config.json")).Replace("\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"dynamic\", \"factor\": 2.0}");
        File.WriteAllText(Path.Combine(dynamic, "config.json"), config);
        (code, _, err) = CliRunner.Run("export", "--model", dynamic, "--tokenizer", ByteTokenizer, "--out", Path.Combine(dir, "x.gguf"));
        Assert.Equal(2, code);
        Assert.Contains("rope_scaling type 'dynamic' has no llama.cpp equivalent", err);
        Assert.False(File.Exists(Path.Combine(dir, "x.gguf")));
    }
}
