using SharpTune.Modeling;
using SharpTune.Peft;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpTune.Export;

/// <summary>What an export wrote: the file, its tensors with their types, and notes about llama.cpp's behaviour.</summary>
public sealed record GgufExportResult(string Path, IReadOnlyList<(string Name, GgmlType Type)> Tensors, IReadOnlyList<string> Warnings, long Bytes);

/// <summary>
/// Writes a Hugging Face model folder (plus an optional PEFT adapter, merged first) as one GGUF file llama.cpp loads:
/// llama.cpp's tensor names and metadata for the architecture, convert_hf_to_gguf.py's weight transforms, the tokenizer,
/// and the --outtype's per-tensor types.
/// </summary>
public static class GgufExporter
{
    public static GgufExportResult Export(string modelDir, string? adapterDir, string? tokenizerDir, GgufOutType outType, string outPath, Action<string>? warn = null)
    {
        var warnings = new List<string>();
        void Warn(string message)
        {
            warnings.Add(message);
            warn?.Invoke(message);
        }
        if (Directory.Exists(outPath)) throw new InvalidInputException($"--out: {outPath} is a folder; give a file name such as model.gguf");
        var config = ModelFamilies.LoadConfig(modelDir);
        var arch = GgufArchitectures.For(config);
        if (arch.Caveat?.Invoke(config) is { } caveat) Warn(caveat);
        var tokenizerMetadata = GgufTokenizer.Metadata(tokenizerDir ?? modelDir, config, Warn);

        using var scope = NewDisposeScope();
        using var lm = ModelLoader.Load(modelDir, new ModelLoadOptions { Adapter = adapterDir is null ? null : SavedLoraAdapter.Open(adapterDir) });
        // The one merge SharpTune has (W + s·BA, or DoRA's renormalised direction), in float32.
        var weights = LoraMerge.MergedTensors(lm, ScalarType.Float32).ToList();
        var tensors = new List<GgufTensor>();
        tensors.AddRange(ExtraTensors(arch, config));
        bool hasOutput = weights.Any(w => w.Key == "lm_head.weight");
        double qScale = config.AttentionScale / GgufArchitectures.AttentionScaleOf(arch, config);
        int experts = config.Moe?.NumExperts ?? 0;
        var expertGroups = new Dictionary<string, SortedDictionary<int, Tensor>>();
        void AddTensor(string name, Tensor value)
        {
            var shape = value.shape;
            int layer = name.StartsWith("blk.", StringComparison.Ordinal) ? int.Parse(name.Split('.')[1]) : -1;
            var type = GgufQuantMix.TypeFor(outType, name, shape, layer, config.NumHiddenLayers, hasOutput, experts);
            tensors.Add(new GgufTensor(name, shape, type, () => value.contiguous().data<float>().ToArray()));
        }
        foreach (var (hfName, value) in weights)
        {
            if (GgufArchitecture.ExpertTensor(hfName) is var (stacked, expert))
            {
                if (!expertGroups.TryGetValue(stacked, out var group)) expertGroups[stacked] = group = [];
                group[expert] = value;
                continue;
            }
            var name = arch.TensorName(hfName)
                ?? throw new InvalidInputException($"{modelDir}: tensor '{hfName}' has no GGUF name for architecture {arch.Name}");
            AddTensor(name, Transform(arch, config, name, value, qScale));
        }
        foreach (var (name, group) in expertGroups)
        {
            if (group.Count != experts || group.Keys.Last() != experts - 1)
                throw new InvalidInputException($"{modelDir}: {name} has {group.Count} experts, config.json says {experts}");
            AddTensor(name, stack(group.Values.ToArray()));   // (E, out, in): GGUF dims [in, out, E]
        }

        var metadata = new List<KeyValuePair<string, GgufValue>>();
        metadata.AddRange(GeneralMetadata(arch, config, outType, modelDir));
        metadata.AddRange(ArchitectureMetadata(arch, config));
        metadata.AddRange(tokenizerMetadata);
        GgufFile.Write(outPath, metadata, tensors);
        return new GgufExportResult(outPath, tensors.Select(t => (t.Name, t.Type)).ToList(), warnings, new FileInfo(outPath).Length);
    }

    /// <summary>convert_hf_to_gguf.py's per-family weight changes, on float32 values.</summary>
    private static Tensor Transform(GgufArchitecture arch, ModelConfig c, string name, Tensor value, double qScale)
    {
        var t = value;
        if (arch.NormPlusOne && name.EndsWith("norm.weight", StringComparison.Ordinal)) t = t + 1;
        bool isQ = name.EndsWith("attn_q.weight", StringComparison.Ordinal) || name.EndsWith("attn_q.bias", StringComparison.Ordinal);
        bool isK = name.EndsWith("attn_k.weight", StringComparison.Ordinal) || name.EndsWith("attn_k.bias", StringComparison.Ordinal);
        // q·k scale: q enters the scores linearly (rope is a rotation), so llama.cpp's fixed scale is corrected on q, or
        // on q's RMSNorm weight where one follows the projection (Qwen3, Gemma 3): the norm would undo a scaled projection.
        bool scaleHere = c.QkNorm ? name.EndsWith("attn_q_norm.weight", StringComparison.Ordinal) : isQ;
        if (scaleHere && Math.Abs(qScale - 1) > 1e-12) t = t * qScale;
        if (arch.PermuteQk && (isQ || isK)) t = PermuteRotaryRows(t, isQ ? c.NumAttentionHeads : c.NumKeyValueHeads);
        return t;
    }

    /// <summary>
    /// Reorders each head's rows from HF's rotate-half layout [x_0..x_{d/2-1}, y_0..y_{d/2-1}] to the interleaved
    /// [x_0, y_0, x_1, y_1, ...] that llama.cpp's NORM rope rotates (LlamaModel.permute).
    /// </summary>
    private static Tensor PermuteRotaryRows(Tensor t, int heads)
    {
        var shape = t.shape;
        long headDim = shape[0] / heads;
        var rest = shape.Skip(1).ToArray();
        return t.reshape([heads, 2, headDim / 2, .. rest]).transpose(1, 2).reshape(shape);
    }

    /// <summary>Tensors convert_hf_to_gguf.py generates from the config: llama3's rope_freqs, longrope's factor lists.</summary>
    private static IEnumerable<GgufTensor> ExtraTensors(GgufArchitecture arch, ModelConfig c)
    {
        var scaling = c.RopeScaling;
        if (scaling is null || scaling.Type == "default") yield break;
        if (arch.RopeScalings?.Contains(scaling.Type) != true)
            throw new InvalidInputException($"config.json: rope_scaling type '{scaling.Type}' has no llama.cpp equivalent for {arch.Name}; exportable: {string.Join(", ", arch.RopeScalings ?? ["none"])}");
        int half = c.RotaryDim / 2;
        if (scaling.Type == "llama3")
        {
            // llama.cpp divides each frequency by its factor; the factors are HF's llama3 frequency changes inverted.
            double original = scaling.OriginalMaxPositionEmbeddings ?? 8192;
            double lowWavelen = original / scaling.LowFreqFactor, highWavelen = original / scaling.HighFreqFactor;
            var factors = new float[half];
            for (int i = 0; i < half; i++)
            {
                double freq = 1.0 / Math.Pow(c.RopeTheta, (float)(2 * i) / c.RotaryDim);
                double wavelen = 2 * Math.PI / freq;
                double smooth = (original / wavelen - scaling.LowFreqFactor) / (scaling.HighFreqFactor - scaling.LowFreqFactor);
                factors[i] = (float)(wavelen < highWavelen ? 1 : wavelen > lowWavelen ? scaling.Factor : 1 / ((1 - smooth) / scaling.Factor + smooth));
            }
            yield return new GgufTensor("rope_freqs.weight", [half], GgmlType.F32, () => factors);
        }
        else if (scaling.Type == "longrope")
        {
            if (scaling.LongFactor?.Length != half || scaling.ShortFactor?.Length != half)
                throw new InvalidInputException($"config.json: rope_scaling longrope needs short_factor and long_factor lists of length {half}");
            var longFactors = scaling.LongFactor.Select(f => (float)f).ToArray();
            var shortFactors = scaling.ShortFactor.Select(f => (float)f).ToArray();
            yield return new GgufTensor("rope_factors_long.weight", [half], GgmlType.F32, () => longFactors);
            yield return new GgufTensor("rope_factors_short.weight", [half], GgmlType.F32, () => shortFactors);
        }
    }

    private static KeyValuePair<string, GgufValue> Kv(string key, GgufValue value) => KeyValuePair.Create(key, value);

    private static IEnumerable<KeyValuePair<string, GgufValue>> GeneralMetadata(GgufArchitecture arch, ModelConfig c, GgufOutType outType, string modelDir)
    {
        yield return Kv("general.architecture", GgufValue.Str(arch.Name));
        yield return Kv("general.type", GgufValue.Str("model"));
        yield return Kv("general.name", GgufValue.Str(Path.GetFileName(Path.GetFullPath(modelDir).TrimEnd(Path.DirectorySeparatorChar))));
        yield return Kv("general.file_type", GgufValue.U32(GgufQuantMix.FileType(outType)));
        yield return Kv("general.quantization_version", GgufValue.U32(2));
        yield return Kv("general.alignment", GgufValue.U32(GgufFile.DefaultAlignment));
    }

    private static IEnumerable<KeyValuePair<string, GgufValue>> ArchitectureMetadata(GgufArchitecture arch, ModelConfig c)
    {
        string a = arch.Name;
        yield return Kv($"{a}.vocab_size", GgufValue.U32(c.VocabSize));
        yield return Kv($"{a}.context_length", GgufValue.U32(c.MaxPositionEmbeddings));
        yield return Kv($"{a}.embedding_length", GgufValue.U32(c.HiddenSize));
        yield return Kv($"{a}.feed_forward_length", GgufValue.U32(c.IntermediateSize));
        yield return Kv($"{a}.block_count", GgufValue.U32(c.NumHiddenLayers));
        yield return Kv($"{a}.attention.head_count", GgufValue.U32(c.NumAttentionHeads));
        yield return Kv($"{a}.attention.head_count_kv", GgufValue.U32(c.NumKeyValueHeads));
        yield return Kv($"{a}.attention.key_length", GgufValue.U32(c.HeadDim));
        yield return Kv($"{a}.attention.value_length", GgufValue.U32(c.HeadDim));
        yield return Kv($"{a}.attention.layer_norm_rms_epsilon", GgufValue.F32(c.RmsNormEps));
        yield return Kv($"{a}.rope.dimension_count", GgufValue.U32(c.RotaryDim));
        yield return Kv($"{a}.rope.freq_base", GgufValue.F32(c.RopeTheta));
        foreach (var kv in RopeScalingMetadata(arch, c)) yield return Kv($"{a}.{kv.Key}", kv.Value);
        if (arch.Extra is not null)
            foreach (var kv in arch.Extra(c)) yield return Kv($"{a}.{kv.Key}", kv.Value);
    }

    private static IEnumerable<KeyValuePair<string, GgufValue>> RopeScalingMetadata(GgufArchitecture arch, ModelConfig c)
    {
        var s = c.RopeScaling;
        switch (s?.Type)
        {
            case "linear":
                yield return Kv("rope.scaling.type", GgufValue.Str("linear"));
                yield return Kv("rope.scaling.factor", GgufValue.F32(s.Factor));
                break;
            case "yarn":
                // llama.cpp derives yarn's attention factor (0.1·ln(factor) + 1) and uses beta_fast 32 / beta_slow 1.
                if (s.AttentionFactor is { } af && Math.Abs(af - (0.1 * Math.Log(s.Factor) + 1)) > 1e-6)
                    throw new InvalidInputException($"config.json: rope_scaling attention_factor {af} cannot be expressed in GGUF (llama.cpp uses 0.1·ln(factor) + 1)");
                if (s.BetaFast != 32 || s.BetaSlow != 1)
                    throw new InvalidInputException("config.json: rope_scaling beta_fast/beta_slow other than 32/1 cannot be expressed in GGUF");
                yield return Kv("rope.scaling.type", GgufValue.Str("yarn"));
                yield return Kv("rope.scaling.factor", GgufValue.F32(s.Factor));
                // SharpTune (as transformers 4.44-4.46) takes yarn's correction range from max_position_embeddings.
                yield return Kv("rope.scaling.original_context_length", GgufValue.U32(c.MaxPositionEmbeddings));
                break;
            case "longrope":
                int original = s.OriginalMaxPositionEmbeddings ?? c.MaxPositionEmbeddings;
                double scale = (double)c.MaxPositionEmbeddings / original;
                double attnFactor = s.AttentionFactor ?? (scale <= 1 ? 1.0 : Math.Sqrt(1 + Math.Log(scale) / Math.Log(original)));
                yield return Kv("rope.scaling.attn_factor", GgufValue.F32(attnFactor));
                break;
        }
    }
}
