namespace SharpTune.Modeling;

/// <summary>One linear layer of the decoder as SharpTune builds it (Modeling/Blocks.cs, Attention.cs, SparseMoe.cs).</summary>
/// <param name="Name">The leaf name LoRA targets match (q_proj, w1, gate, ...).</param>
/// <param name="Copies">How many such layers per decoder layer (experts: one per expert).</param>
/// <param name="TokensPerToken">Rows it sees per input token: 1, or top_k / num_experts for one expert.</param>
public sealed record LinearShape(string Name, long In, long Out, bool Bias, int Copies, double TokensPerToken, bool IsRouter = false, bool IsExpert = false);

/// <summary>One parameter tensor (times <paramref name="Copies"/>), with what the optimizers tell apart.</summary>
/// <param name="IsHiddenMatrix">a 2-D weight of the decoder layers or an adapter (Muon orthogonalises these; not embeddings or lm_head)</param>
public readonly record struct ParameterTensor(long Rows, long Columns, bool IsHiddenMatrix, long Copies = 1)
{
    public long Elements => Rows * Columns;
    public long Total => Elements * Copies;

    public static ParameterTensor Vector(long length, long copies = 1) => new(length, 1, false, copies);
}

/// <summary>
/// The parameters of a model, counted from its config alone (no weights are read): every decoder linear, the
/// embeddings, norms and lm_head, in the layout SharpTune's modules register.
/// </summary>
public sealed record ModelInventory(ModelConfig Config, IReadOnlyList<IReadOnlyList<LinearShape>> Layers, long EmbeddingParams, long LmHeadParams, long NormParams)
{
    public static ModelInventory From(ModelConfig c)
    {
        long h = c.HiddenSize, q = (long)c.NumAttentionHeads * c.HeadDim, kv = (long)c.NumKeyValueHeads * c.HeadDim, i = c.IntermediateSize;
        var layers = new List<IReadOnlyList<LinearShape>>();
        for (int layer = 0; layer < c.NumHiddenLayers; layer++)
        {
            var list = new List<LinearShape>();
            if (c.FusedProjections)
                list.Add(new("qkv_proj", h, q + 2 * kv, c.QkvBias, 1, 1));
            else
            {
                list.Add(new("q_proj", h, q, c.QkvBias, 1, 1));
                list.Add(new("k_proj", h, kv, c.QkvBias, 1, 1));
                list.Add(new("v_proj", h, kv, c.QkvBias, 1, 1));
            }
            list.Add(new("o_proj", q, h, c.OutputBias, 1, 1));
            if (c.Moe is { } moe && moe.SparseLayers[layer])
            {
                bool mixtral = moe.Layout == MoeLayout.Mixtral;
                double share = (double)moe.TopK / moe.NumExperts;
                long e = moe.ExpertIntermediateSize;
                list.Add(new("gate", h, moe.NumExperts, false, 1, 1, IsRouter: true));
                list.Add(new(mixtral ? "w1" : "gate_proj", h, e, false, moe.NumExperts, share, IsExpert: true));
                list.Add(new(mixtral ? "w3" : "up_proj", h, e, false, moe.NumExperts, share, IsExpert: true));
                list.Add(new(mixtral ? "w2" : "down_proj", e, h, false, moe.NumExperts, share, IsExpert: true));
            }
            else if (c.FusedProjections)
            {
                list.Add(new("gate_up_proj", h, 2 * i, c.MlpBias, 1, 1));
                list.Add(new("down_proj", i, h, c.MlpBias, 1, 1));
            }
            else
            {
                list.Add(new("gate_proj", h, i, c.MlpBias, 1, 1));
                list.Add(new("up_proj", h, i, c.MlpBias, 1, 1));
                list.Add(new("down_proj", i, h, c.MlpBias, 1, 1));
            }
            layers.Add(list);
        }
        long normsPerLayer = (c.SandwichNorms ? 4 : 2) * h + (c.QkNorm ? 2L * c.HeadDim : 0);
        long embedding = (long)c.VocabSize * h;
        return new ModelInventory(c, layers, embedding, c.TieWordEmbeddings ? 0 : embedding, normsPerLayer * c.NumHiddenLayers + h);
    }

    /// <summary>The tensors a full fine-tune trains: embeddings, lm_head, every decoder linear's weight and bias, the norms.</summary>
    public IEnumerable<ParameterTensor> AllTensors()
    {
        long h = Config.HiddenSize;
        yield return new(Config.VocabSize, h, false);
        if (LmHeadParams > 0) yield return new(Config.VocabSize, h, false);
        foreach (var l in Layers.SelectMany(layer => layer))
        {
            yield return new(l.Out, l.In, true, l.Copies);
            if (l.Bias) yield return ParameterTensor.Vector(l.Out, l.Copies);
        }
        long layers = Config.NumHiddenLayers;
        yield return ParameterTensor.Vector(h, (Config.SandwichNorms ? 4 : 2) * layers + 1);
        if (Config.QkNorm) yield return ParameterTensor.Vector(Config.HeadDim, 2 * layers);
    }

    /// <summary>The tensors LoRA (and DoRA's magnitudes) adds to the adapted linears.</summary>
    public IEnumerable<ParameterTensor> AdapterTensors(Func<LinearShape, bool> adapted, int rank, bool dora)
    {
        foreach (var l in Layers.SelectMany(layer => layer).Where(adapted))
        {
            yield return new(rank, l.In, true, l.Copies);
            yield return new(l.Out, rank, true, l.Copies);
            if (dora) yield return ParameterTensor.Vector(l.Out, l.Copies);
        }
    }

    public static long ParamsOf(LinearShape l) => (l.In * l.Out + (l.Bias ? l.Out : 0)) * l.Copies;

    public long LinearParams => Layers.Sum(layer => layer.Sum(ParamsOf));

    public long TotalParams => LinearParams + EmbeddingParams + LmHeadParams + NormParams;

    /// <summary>The largest single parameter tensor (the optimizer step's temporaries are a few copies of it).</summary>
    public long LargestTensor => Math.Max(Math.Max(EmbeddingParams, LmHeadParams), Layers.SelectMany(l => l).Select(l => l.In * l.Out).DefaultIfEmpty(0).Max());
}
