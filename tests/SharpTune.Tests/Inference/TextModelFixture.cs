using System.Text.Json.Nodes;
using SharpTune.Inference;
using SharpTune.Modeling;
using SharpTune.Serving;

namespace SharpTune.Tests.Inference;

/// <summary>
/// A tiny random Llama whose vocabulary matches the real Llama 3 tokenizer (tests/…/Tokenization/data/tokenizers/llama3),
/// saved as a model folder with the tokenizer files beside it, as `sharptune init-model` + a copied tokenizer would be.
/// </summary>
public sealed class TextModelFixture : IDisposable
{
    public const int ContextLength = 256;

    public TextModelFixture()
    {
        Dir = TestPaths.TempDir();
        var json = CommonConfig.Preset("llama", "LlamaForCausalLM", new JsonObject
        {
            ["vocab_size"] = 128256, ["hidden_size"] = 32, ["intermediate_size"] = 64, ["num_hidden_layers"] = 2,
            ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2, ["max_position_embeddings"] = ContextLength,
            ["rms_norm_eps"] = 1e-5, ["rope_theta"] = 500000.0, ["tie_word_embeddings"] = true,
            ["bos_token_id"] = 128000, ["eos_token_id"] = 128001,
        });
        json["initializer_range"] = 0.5;   // large weights: a peaked next-token distribution, so greedy text varies with the prompt
        using (var model = new CausalLM(ModelFamilies.ParseConfig(json, "text fixture"), TorchSharp.torch.ScalarType.Float32))
        {
            RandomWeights.Initialize(model, 11);
            ModelIO.Save(model, Dir);
        }
        // generation_config.json lists a second EOS id, as Llama 3 instruct models do.
        File.WriteAllText(Path.Combine(Dir, "generation_config.json"), """{"bos_token_id": 128000, "eos_token_id": [128001, 128009]}""");
        var tokenizerDir = Path.Combine(TestPaths.RepoRoot, "tests", "SharpTune.Tests", "Tokenization", "data", "tokenizers", "llama3");
        foreach (var file in new[] { "tokenizer.json.gz", "tokenizer_config.json.gz" })
            File.Copy(Path.Combine(tokenizerDir, file), Path.Combine(Dir, file));
        Generator = TextGenerator.Load(Dir);
    }

    public string Dir { get; }
    public TextGenerator Generator { get; }

    /// <summary>The fixture's generator is shared; tests that generate take this lock (the model is not thread-safe).</summary>
    public object Gate { get; } = new();

    public void Dispose()
    {
        Generator.Model.Dispose();
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}
