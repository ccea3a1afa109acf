using static SharpTune.Tests.CliRunner;
using System.Text.Json.Nodes;
using SharpTune.Modeling;
using SharpTune.SafeTensors;

namespace SharpTune.Tests.Modeling;

/// <summary>init-model, score and generate through the CLI entry point, as the acceptance checks run them.</summary>
public sealed class ModelCommandsTests
{
    private readonly HfFixture fixture = new("llama");


    private static readonly string[] TinyLlamaKeys =
    [
        "lm_head.weight",
        "model.embed_tokens.weight",
        "model.layers.0.input_layernorm.weight",
        "model.layers.0.mlp.down_proj.weight",
        "model.layers.0.mlp.gate_proj.weight",
        "model.layers.0.mlp.up_proj.weight",
        "model.layers.0.post_attention_layernorm.weight",
        "model.layers.0.self_attn.k_proj.weight",
        "model.layers.0.self_attn.o_proj.weight",
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.self_attn.v_proj.weight",
        "model.layers.1.input_layernorm.weight",
        "model.layers.1.mlp.down_proj.weight",
        "model.layers.1.mlp.gate_proj.weight",
        "model.layers.1.mlp.up_proj.weight",
        "model.layers.1.post_attention_layernorm.weight",
        "model.layers.1.self_attn.k_proj.weight",
        "model.layers.1.self_attn.o_proj.weight",
        "model.layers.1.self_attn.q_proj.weight",
        "model.layers.1.self_attn.v_proj.weight",
        "model.norm.weight",
    ];

    private static readonly string[] TinyPhi3Keys =
    [
        "lm_head.weight",
        "model.embed_tokens.weight",
        "model.layers.0.input_layernorm.weight",
        "model.layers.0.mlp.down_proj.weight",
        "model.layers.0.mlp.gate_up_proj.weight",
        "model.layers.0.post_attention_layernorm.weight",
        "model.layers.0.self_attn.o_proj.weight",
        "model.layers.0.self_attn.qkv_proj.weight",
        "model.layers.1.input_layernorm.weight",
        "model.layers.1.mlp.down_proj.weight",
        "model.layers.1.mlp.gate_up_proj.weight",
        "model.layers.1.post_attention_layernorm.weight",
        "model.layers.1.self_attn.o_proj.weight",
        "model.layers.1.self_attn.qkv_proj.weight",
        "model.norm.weight",
    ];

    [Theory]
    [InlineData("llama", 21, 106816)]
    [InlineData("mistral", 21, 106816)]
    [InlineData("qwen2", 26, 90688)]
    [InlineData("gemma", 20, 86336)]
    [InlineData("gemma2", 24, 90688)]
    [InlineData("phi3", 15, 115008)]
    [InlineData("qwen3", 25, 106880)]          // the hf-tiny-new fixtures' shapes and counts
    [InlineData("gemma3_text", 54, 165056)]
    [InlineData("mixtral", 41, 254784)]
    [InlineData("qwen3_moe", 69, 157056)]
    public void InitModelWritesALoadableFolderForEveryFamily(string arch, int tensorCount, long parameterCount)
    {
        var dir = Path.Combine(TestPaths.TempDir(), arch);
        var (code, stdout, stderr) = Run("init-model", "--arch", arch, "--preset", "tiny", "--out", dir, "--seed", "5");
        Assert.True(code == 0, stderr);
        Assert.StartsWith($"wrote {arch} 'tiny' (", stdout);
        Assert.True(File.Exists(Path.Combine(dir, "config.json")));
        Assert.True(File.Exists(Path.Combine(dir, "model.safetensors")));
        var generation = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "generation_config.json")))!.AsObject();
        Assert.True(generation["eos_token_id"] is not null);

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();
        Assert.Equal(arch, config["model_type"]!.GetValue<string>());
        Assert.Equal("float32", config["torch_dtype"]!.GetValue<string>());
        Assert.Equal(ModelFamilies.Get(arch, "test").Architecture, config["architectures"]![0]!.GetValue<string>());

        using var checkpoint = SafeTensorsCheckpoint.Open(dir);
        Assert.Equal(tensorCount, checkpoint.Names.Count);
        using var model = ModelLoader.Load(dir);
        Assert.Equal(parameterCount, model.parameters().Sum(p => p.numel()));
        Assert.Equal(checkpoint.Names.OrderBy(n => n, StringComparer.Ordinal), model.named_parameters().Select(p => p.name).OrderBy(n => n, StringComparer.Ordinal));
        if (arch == "llama") Assert.Equal(TinyLlamaKeys, checkpoint.Names.OrderBy(n => n, StringComparer.Ordinal));
        if (arch == "phi3") Assert.Equal(TinyPhi3Keys, checkpoint.Names.OrderBy(n => n, StringComparer.Ordinal));
        if (arch is "qwen2" or "gemma" or "gemma2") Assert.False(checkpoint.Contains("lm_head.weight"));   // tied

        // transformers' init: norms 1 (Llama) or 0 (Gemma's 1 + w), matrices N(0, 0.02).
        using var norm = checkpoint.Load("model.norm.weight");
        Assert.Equal(arch.StartsWith("gemma") ? 0f : 1f, norm[0].item<float>());
        using var embed = checkpoint.Load("model.embed_tokens.weight");
        Assert.InRange(embed.std().item<float>(), 0.018, 0.022);
    }

    [Fact]
    public void InitModelIsDeterministicPerSeed()
    {
        var root = TestPaths.TempDir();
        byte[] Write(string name, string seed)
        {
            var dir = Path.Combine(root, name);
            Assert.Equal(0, Run("init-model", "--arch", "gemma2", "--preset", "tiny", "--out", dir, "--seed", seed).Code);
            return File.ReadAllBytes(Path.Combine(dir, "model.safetensors"));
        }
        var a = Write("a", "42");
        var b = Write("b", "42");
        var c = Write("c", "43");
        Assert.Equal(a, b);
        Assert.Equal(a.Length, c.Length);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void InitModelRejectsUnknownArchAndPreset()
    {
        var dir = TestPaths.TempDir();
        var arch = Run("init-model", "--arch", "gpt2", "--out", dir);
        Assert.Equal(2, arch.Code);
        Assert.Equal("error: --arch: model_type 'gpt2' is not supported; supported: llama, mistral, qwen2, gemma, gemma2, phi3, qwen3, gemma3_text, mixtral, qwen3_moe", arch.Err.Trim());
        var preset = Run("init-model", "--arch", "qwen2", "--preset", "huge", "--out", dir);
        Assert.Equal(2, preset.Code);
        Assert.Equal("error: --preset: 'huge' is not a qwen2 preset; available: tiny, small, qwen2.5-0.5b", preset.Err.Trim());
        Assert.Empty(Directory.GetFiles(dir));
    }

    [Fact]
    public void ScoreCommandReproducesGoldenLoss()
    {
        var dir = TestPaths.TempDir();
        var input = Path.Combine(dir, "in.json");
        var output = Path.Combine(dir, "out.json");
        File.WriteAllText(input, fixture.Inputs.ToJsonString());
        var (code, stdout, stderr) = Run("score", "--model", fixture.Dir, "--input", input, "--output", output);
        Assert.True(code == 0, stderr);
        Assert.StartsWith("loss 7.17397", stdout);
        var result = JsonNode.Parse(File.ReadAllText(output))!.AsObject();
        Assert.Equal(fixture.Loss, result["loss"]!.GetValue<double>(), 1e-4);
        Assert.Equal([23L, 20L], result["n_label_tokens_per_row"]!.AsArray().Select(n => n!.GetValue<long>()));
        var golden = fixture.Golden["last_logits"]!.AsArray();
        var last = result["last_logits"]!.AsArray();
        for (int r = 0; r < 2; r++)
        for (int v = 0; v < 256; v++)
            Assert.True(Math.Abs(golden[r]![v]!.GetValue<double>() - last[r]![v]!.GetValue<double>()) < 1e-3);
    }

    [Fact]
    public void GenerateCommandPrintsGoldenGreedyIds()
    {
        var prompt = string.Join(",", fixture.GreedyPrompt);
        var (code, stdout, stderr) = Run("generate", "--model", fixture.Dir, "--prompt-ids", prompt, "--max-new-tokens", "8", "--output-ids");
        Assert.True(code == 0, stderr);
        Assert.Equal("[4,201,140,47,173,123,21,84]", stdout.Trim());
        Assert.Equal("[" + string.Join(",", fixture.Greedy) + "]", stdout.Trim());
    }

    [Fact]
    public void GenerateAndScoreReportBadInputWithExitCode2()
    {
        var missing = Path.Combine(TestPaths.TempDir(), "nope");
        var noModel = Run("generate", "--model", missing, "--prompt-ids", "1,2", "--output-ids");
        Assert.Equal(2, noModel.Code);
        Assert.Equal($"error: {missing}: no such model folder", noModel.Err.Trim());

        var badIds = Run("generate", "--model", fixture.Dir, "--prompt-ids", "1,x,3");
        Assert.Equal(2, badIds.Code);
        Assert.Equal("error: --prompt-ids: 'x' is not a token id; expected comma-separated non-negative integers", badIds.Err.Trim());

        var outside = Run("generate", "--model", fixture.Dir, "--prompt-ids", "5,256", "--max-new-tokens", "2");
        Assert.Equal(2, outside.Code);
        Assert.Equal("error: prompt: token id 256 is outside the vocabulary [0, 256)", outside.Err.Trim());

        var dir = TestPaths.TempDir();
        var input = Path.Combine(dir, "in.json");
        File.WriteAllText(input, """{"input_ids": [[5, 999, 7]]}""");
        var scoreOutside = Run("score", "--model", fixture.Dir, "--input", input, "--output", Path.Combine(dir, "out.json"));
        Assert.Equal(2, scoreOutside.Code);
        Assert.Equal("error: input_ids row 0 position 1: token id 999 is outside the vocabulary [0, 256)", scoreOutside.Err.Trim());
        Assert.False(File.Exists(Path.Combine(dir, "out.json")));
    }

    [Fact]
    public void ConfigErrorsNameTheFileAndListWhatIsSupported()
    {
        string CopyWith(Action<JsonObject> edit)
        {
            var dir = TestPaths.TempDir();
            foreach (var file in Directory.GetFiles(fixture.Dir)) File.Copy(file, Path.Combine(dir, Path.GetFileName(file)));
            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();
            edit(config);
            File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
            return Path.GetFullPath(dir);
        }

        var gpt2 = CopyWith(c => c["model_type"] = "gpt2");
        var typeError = Run("generate", "--model", gpt2, "--prompt-ids", "1,2");
        Assert.Equal(2, typeError.Code);
        Assert.Equal($"error: {Path.Combine(gpt2, "config.json")}: model_type 'gpt2' is not supported; supported: llama, mistral, qwen2, gemma, gemma2, phi3, qwen3, gemma3_text, mixtral, qwen3_moe", typeError.Err.Trim());

        var rope = CopyWith(c => c["rope_scaling"] = new JsonObject { ["rope_type"] = "su-yarn", ["factor"] = 2.0 });
        var ropeError = Run("generate", "--model", rope, "--prompt-ids", "1,2");
        Assert.Equal(2, ropeError.Code);
        Assert.Equal($"error: {Path.Combine(rope, "config.json")}: rope_scaling type 'su-yarn' is not supported; supported: default, linear, dynamic, llama3, yarn, longrope", ropeError.Err.Trim());

        var badNumber = CopyWith(c => c["num_attention_heads"] = "four");
        var numberError = Run("generate", "--model", badNumber, "--prompt-ids", "1,2");
        Assert.Equal(2, numberError.Code);
        Assert.Equal($"error: {Path.Combine(badNumber, "config.json")}: num_attention_heads: \"four\" is invalid; expected an integer", numberError.Err.Trim());
    }
}
