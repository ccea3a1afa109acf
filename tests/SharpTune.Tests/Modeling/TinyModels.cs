using System.Text.Json.Nodes;
using SharpTune.Modeling;
using static TorchSharp.torch;

namespace SharpTune.Tests.Modeling;

/// <summary>Small random models built from a config.json body, with weights large enough (std 0.2) that every token matters.</summary>
internal static class TinyModels
{
    public static JsonObject TinyConfig(string modelType, Action<JsonObject>? edit = null)
    {
        var json = new JsonObject
        {
            ["model_type"] = modelType,
            ["vocab_size"] = 64,
            ["hidden_size"] = 32,
            ["intermediate_size"] = 48,
            ["num_hidden_layers"] = 2,
            ["num_attention_heads"] = 4,
            ["num_key_value_heads"] = 2,
            ["max_position_embeddings"] = 128,
            ["rms_norm_eps"] = 1e-6,
            ["rope_theta"] = 10000.0,
            ["initializer_range"] = 0.2,
        };
        edit?.Invoke(json);
        return json;
    }

    public static CausalLM Build(JsonObject json, long seed = 7)
    {
        var model = new CausalLM(ModelFamilies.ParseConfig(json, "test config"), ScalarType.Float32);
        RandomWeights.Initialize(model, seed);
        model.eval();
        return model;
    }

    public static CausalLM Preset(string arch, long seed = 3)
    {
        var family = ModelFamilies.Get(arch, "test");
        var json = (JsonObject)family.Presets["tiny"].DeepClone();
        json["initializer_range"] = 0.2;
        return Build(json, seed);
    }

    public static Tensor Ids(params long[] ids) => tensor(ids, [1, ids.Length]);

    /// <summary>Logits (V) at the last position of a single row.</summary>
    public static Tensor LastLogits(CausalLM model, long[] ids)
    {
        using var noGrad = no_grad();
        using var input = Ids(ids);
        using var logits = model.Forward(new ForwardBatch(input));
        return logits[0, -1].clone();
    }

    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        using var diff = (a - b).abs().max();
        return diff.item<float>();
    }

    public static long[] Sequence(int length, int vocab, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => (long)random.Next(3, vocab)).ToArray();
    }
}
