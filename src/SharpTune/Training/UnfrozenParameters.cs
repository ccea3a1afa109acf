using System.Text.RegularExpressions;
using SharpTune.Modeling;

namespace SharpTune.Training;

/// <summary>
/// unfrozen_parameters: which parameters of a full fine-tune train. Each pattern is matched as Python's re.match does
/// (anchored at the start of the parameter name, not at the end), as axolotl applies them; no pattern means all train.
/// </summary>
public static class UnfrozenParameters
{
    public static bool Matches(IReadOnlyList<string> patterns, string name) =>
        patterns.Any(p => Regex.IsMatch(name, "^(?:" + p + ")"));

    public static void Apply(CausalLM model, IReadOnlyList<string> patterns)
    {
        var parameters = model.named_parameters().ToList();
        if (patterns.Count == 0)
        {
            foreach (var (_, p) in parameters) p.requires_grad = true;
            return;
        }
        int trainable = 0;
        foreach (var (name, p) in parameters)
        {
            p.requires_grad = Matches(patterns, name);
            if (p.requires_grad) trainable++;
        }
        if (trainable == 0)
            throw new InvalidInputException(
                $"unfrozen_parameters: [{string.Join(", ", patterns)}] matches no parameter of this model; names look like {string.Join(", ", parameters.Take(3).Select(p => p.name))}");
    }
}
