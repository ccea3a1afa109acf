using TorchSharp;
using static TorchSharp.torch;
using TorchSharp.Modules;

namespace SharpTune.Modeling;

/// <summary>
/// A trainable add-on to a linear layer (LoRA, DoRA). Its tensors are registered on the layer itself so their names
/// sit beside weight/bias exactly as PEFT names them (q_proj.lora_A.weight).
/// </summary>
public interface ILinearAdapter
{
    /// <summary>Child modules / parameters to register on the layer, by the names PEFT uses.</summary>
    IEnumerable<(string Name, nn.Module Module)> Modules { get; }
    IEnumerable<(string Name, Parameter Parameter)> Parameters { get; }
    /// <summary>
    /// The layer's output given its input rows (N × in) and the frozen base output (N × out), a tensor of the adapter's
    /// own that it may add onto in place.
    /// </summary>
    Tensor Forward(Tensor input, Tensor baseOutput, LinearLayer layer);
}

/// <summary>
/// A frozen base weight held outside the module's parameters (e.g. 4-bit / 8-bit quantized). The layer owns and
/// disposes it; gradients flow to the input only.
/// </summary>
public interface IFrozenWeight : IDisposable
{
    /// <summary>x Wᵀ (no bias) in the input's dtype.</summary>
    Tensor Linear(Tensor input);
    /// <summary>W as a new dense (out × in) tensor without gradient.</summary>
    Tensor Dense(ScalarType dtype);
}

/// <summary>
/// y = x Wᵀ + b with parameters named weight/bias like nn.Linear, created uninitialised: weights come from a
/// checkpoint or an explicit initialiser, so building an 8B model costs no random-number time.
/// </summary>
public sealed class LinearLayer : nn.Module<Tensor, Tensor>
{
    public readonly long InFeatures, OutFeatures;
    private Parameter? weight;
    private readonly Parameter? bias;

    public LinearLayer(long inFeatures, long outFeatures, bool hasBias, ScalarType dtype) : base(nameof(LinearLayer))
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        weight = new Parameter(empty(outFeatures, inFeatures, dtype));
        bias = hasBias ? new Parameter(empty(outFeatures, dtype)) : null;
        RegisterComponents();
    }

    public Parameter Weight => weight ?? throw new InvalidOperationException("this layer's weight is held as a frozen (quantized) weight; use DenseWeight(dtype)");
    public Parameter? Bias => bias;
    public ILinearAdapter? Adapter { get; private set; }

    /// <summary>Set once the weight parameter has been replaced by a frozen external weight (see <see cref="ReplaceWeight"/>).</summary>
    public IFrozenWeight? FrozenWeight { get; private set; }

    /// <summary>
    /// Drops the weight parameter (its name leaves named_parameters, its memory is freed) and computes the base product
    /// through <paramref name="frozen"/> instead. Used to hold quantized base weights.
    /// </summary>
    public void ReplaceWeight(IFrozenWeight frozen)
    {
        if (FrozenWeight is not null) throw new InvalidOperationException("layer weight already replaced");
        ConditionallyRegisterParameter("weight", null);
        weight?.Dispose();
        weight = null;
        FrozenWeight = frozen;
    }

    /// <summary>The base weight W (out × in) in <paramref name="dtype"/>: the parameter, or the frozen weight dequantized.</summary>
    public Tensor DenseWeight(ScalarType dtype) => FrozenWeight?.Dense(dtype) ?? weight!.to(dtype);

    /// <summary>false runs the frozen base alone (DPO's reference model is the same network with adapters off).</summary>
    public bool AdapterEnabled { get; set; } = true;

    public void Attach(ILinearAdapter adapter)
    {
        if (Adapter is not null) throw new InvalidOperationException("layer already has an adapter");
        Adapter = adapter;
        foreach (var (name, module) in adapter.Modules) register_module(name, module);
        foreach (var (name, parameter) in adapter.Parameters) register_parameter(name, parameter);
    }

    /// <summary>x Wᵀ + b without the adapter.</summary>
    public Tensor ForwardBase(Tensor input)
    {
        if (FrozenWeight is null) return nn.functional.linear(input, weight!, bias);
        if (bias is null) return FrozenWeight.Linear(input);
        using var product = FrozenWeight.Linear(input);
        return product + bias;
    }

    public override Tensor forward(Tensor input)
    {
        if (Adapter is null || !AdapterEnabled) return ForwardBase(input);
        // As rows, so that the base output the adapter adds onto in place is a tensor of its own, not a view of one.
        using var scope = NewDisposeScope();
        var rows = input.reshape(-1, InFeatures);
        var output = Adapter.Forward(rows, ForwardBase(rows), this);
        return output.view([.. input.shape[..^1], OutFeatures]).MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) FrozenWeight?.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>Token embedding table; parameter named weight like nn.Embedding.</summary>
public sealed class EmbeddingLayer : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;

    public EmbeddingLayer(long vocabSize, long hiddenSize, ScalarType dtype) : base(nameof(EmbeddingLayer))
    {
        weight = new Parameter(empty(vocabSize, hiddenSize, dtype));
        RegisterComponents();
    }

    public Parameter Weight => weight;

    public override Tensor forward(Tensor inputIds)
    {
        var shape = inputIds.shape.Append(weight.shape[1]).ToArray();
        return weight.index_select(0, inputIds.reshape(-1)).view(shape);
    }
}

/// <summary>RMSNorm computed in float32 as transformers does; Gemma's variant scales by (1 + w).</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double eps;
    private readonly NormStyle style;

    public RmsNorm(long size, double eps, NormStyle style, ScalarType dtype) : base(nameof(RmsNorm))
    {
        weight = new Parameter(empty(size, dtype));
        this.eps = eps;
        this.style = style;
        RegisterComponents();
    }

    public Parameter Weight => weight;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var x32 = x.to(float32);
        var normed = x32 * rsqrt(x32.pow(2).mean([-1], keepdim: true) + eps);
        var result = style == NormStyle.OnePlusWeight
            ? (normed * (weight.to(float32) + 1.0)).to(x.dtype)   // Gemma: multiply in fp32, then cast
            : weight * normed.to(x.dtype);                         // Llama: cast, then multiply
        return result.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// down(act(gate(x)) · up(x)) with separate projections: gate_proj / up_proj / down_proj (Llama, Mistral, Qwen2, Gemma,
/// Qwen3-MoE experts), or Mixtral's expert names w1 (gate) / w3 (up) / w2 (down).
/// </summary>
public sealed class GatedMlp : nn.Module<Tensor, Tensor>
{
    // Held in a plain record, not module fields: TorchSharp registers module-typed fields under their C# names.
    private sealed record Projections(LinearLayer Gate, LinearLayer Up, LinearLayer Down);
    private readonly Projections proj;
    private readonly string act;

    public GatedMlp(ModelConfig config, ScalarType dtype) : this(config.HiddenSize, config.IntermediateSize, config.MlpBias, config.HiddenAct, dtype) { }

    public GatedMlp(long hidden, long intermediate, bool bias, string act, ScalarType dtype, bool mixtralNames = false) : base(nameof(GatedMlp))
    {
        proj = new Projections(new LinearLayer(hidden, intermediate, bias, dtype), new LinearLayer(hidden, intermediate, bias, dtype), new LinearLayer(intermediate, hidden, bias, dtype));
        this.act = act;
        // Registered by checkpoint name because the names depend on the family.
        register_module(mixtralNames ? "w1" : "gate_proj", proj.Gate);
        register_module(mixtralNames ? "w3" : "up_proj", proj.Up);
        register_module(mixtralNames ? "w2" : "down_proj", proj.Down);
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return proj.Down.call(Activations.Apply(act, proj.Gate.call(x)) * proj.Up.call(x)).MoveToOuterDisposeScope();
    }
}
