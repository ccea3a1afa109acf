using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using SharpTune.Config;

namespace SharpTune.Training;

/// <summary>One completion as reward functions see it: the prompt text, the decoded completion, its length and source row.</summary>
public sealed record RewardInput(string Prompt, string Completion, int CompletionTokens, string RowJson);

/// <summary>A reward function: one score per completion, NaN where it does not apply (left out of the weighted sum, as TRL's None).</summary>
public interface IRewardFunction
{
    string Name { get; }
    double[] Score(IReadOnlyList<RewardInput> inputs);
}

/// <summary>The reward functions of a config: trl.reward_funcs in order, then reward_command.</summary>
public static class RewardFunctions
{
    public static IReadOnlyList<IRewardFunction> From(TrainConfig config, string configDir)
    {
        var functions = new List<IRewardFunction>();
        foreach (var name in config.Trl.RewardFuncs)
        {
            functions.Add(name switch
            {
                "exact_match" => new ExactMatchReward(config.RewardAnswerField, config.RewardAnswerExtraction),
                "regex_match" => new RegexReward(config.RewardRegex ?? throw new InvalidInputException("regex_match needs reward_regex")),
                "tag_format" => new TagFormatReward(config.RewardFormatTags),
                "think_format" => new ThinkFormatReward(),
                "json_valid" => new JsonValidReward(),
                "length_penalty" => new LengthPenaltyReward(config.Trl.MaxCompletionLength, config.RewardSoftPunishCache ?? Math.Max(1, config.Trl.MaxCompletionLength / 4)),
                _ => throw new InvalidInputException($"trl.reward_funcs: '{name}' is not a built-in reward; expected one of {string.Join(", ", ConfigSchema.BuiltInRewards)}"),
            });
        }
        if (config.RewardCommand is { } command) functions.Add(new RewardCommand(command, configDir, TimeSpan.FromSeconds(config.RewardCommandTimeout)));
        return functions;
    }

    /// <summary>Σ weight × reward per row, skipping NaN entries (TRL's nansum); weights default to 1 each.</summary>
    public static double[] Weighted(IReadOnlyList<double[]> perFunction, IReadOnlyList<double> weights)
    {
        int rows = perFunction.Count == 0 ? 0 : perFunction[0].Length;
        var total = new double[rows];
        for (int f = 0; f < perFunction.Count; f++)
        {
            double w = weights.Count > 0 ? weights[f] : 1.0;
            for (int r = 0; r < rows; r++)
                if (!double.IsNaN(perFunction[f][r])) total[r] += w * perFunction[f][r];
        }
        return total;
    }
}

/// <summary>
/// 1 when the final answer extracted from the completion equals the row's reference answer, else 0. Both sides are
/// trimmed with whitespace collapsed; a reference holding "####" (GSM8K) is compared by the text after it; numbers compare
/// by value ("1,000" = "1000.0").
/// </summary>
public sealed class ExactMatchReward(string answerField, AnswerExtraction extraction) : IRewardFunction
{
    private static readonly Regex AnswerTag = new(@"<answer>(.*?)</answer>", RegexOptions.Singleline | RegexOptions.Compiled);
    private static readonly Regex Number = new(@"-?\d[\d,]*(?:\.\d+)?", RegexOptions.Compiled);

    public string Name => "exact_match";

    public double[] Score(IReadOnlyList<RewardInput> inputs) => inputs.Select(input =>
    {
        var expected = Reference(input.RowJson);
        var answer = Extract(input.Completion, extraction, IsNumber(expected));
        return answer is not null && Same(answer, expected) ? 1.0 : 0.0;
    }).ToArray();

    private string Reference(string rowJson)
    {
        var row = JsonNode.Parse(rowJson) as JsonObject;
        var value = row?[answerField];
        string text = value switch
        {
            JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
            JsonValue v when v.GetValueKind() is JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => v.ToJsonString(),
            _ => throw new InvalidInputException($"exact_match: a prompt row has no text field \"{answerField}\" (keys: {string.Join(", ", row?.Select(p => p.Key) ?? [])}); set reward_answer_field to the field holding the reference answer"),
        };
        int hash = text.LastIndexOf("####", StringComparison.Ordinal);
        return Normalize(hash >= 0 ? text[(hash + 4)..] : text);
    }

    /// <summary>The final answer of a completion by the chosen rule; null when the rule finds none.</summary>
    public static string? Extract(string completion, AnswerExtraction how, bool referenceIsNumber)
    {
        switch (how)
        {
            case AnswerExtraction.AnswerTag:
                var tags = AnswerTag.Matches(completion);
                return tags.Count > 0 ? Normalize(tags[^1].Groups[1].Value) : null;
            case AnswerExtraction.Boxed:
                return LastBoxed(completion) is { } boxed ? Normalize(boxed) : null;
            case AnswerExtraction.Hash:
                int at = completion.LastIndexOf("####", StringComparison.Ordinal);
                return at >= 0 ? Normalize(completion[(at + 4)..].Split('\n')[0]) : null;
            case AnswerExtraction.LastNumber:
                var numbers = Number.Matches(completion);
                return numbers.Count > 0 ? Normalize(numbers[^1].Value) : null;
            case AnswerExtraction.Full:
                return Normalize(completion);
            default:
                if (AnswerTag.IsMatch(completion)) return Extract(completion, AnswerExtraction.AnswerTag, referenceIsNumber);
                if (completion.Contains(@"\boxed{", StringComparison.Ordinal)) return Extract(completion, AnswerExtraction.Boxed, referenceIsNumber);
                if (completion.Contains("####", StringComparison.Ordinal)) return Extract(completion, AnswerExtraction.Hash, referenceIsNumber);
                return referenceIsNumber ? Extract(completion, AnswerExtraction.LastNumber, true) : Normalize(completion);
        }
    }

    private static string? LastBoxed(string text)
    {
        int start = text.LastIndexOf(@"\boxed{", StringComparison.Ordinal);
        if (start < 0) return null;
        int depth = 0;
        for (int i = start + 6; i < text.Length; i++)
        {
            if (text[i] == '{') depth++;
            else if (text[i] == '}' && --depth == 0) return text[(start + 7)..i];
        }
        return null;
    }

    private static string Normalize(string text) => string.Join(' ', text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));

    private static bool IsNumber(string text) => ParseNumber(text) is not null;

    private static decimal? ParseNumber(string text)
    {
        var t = text.Replace(",", "").TrimStart('$').TrimEnd('.');
        return decimal.TryParse(t, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var d) ? d : null;
    }

    private static bool Same(string answer, string expected) =>
        ParseNumber(answer) is { } a && ParseNumber(expected) is { } e ? a == e : string.Equals(answer, expected, StringComparison.Ordinal);
}

/// <summary>1 when the whole completion matches reward_regex (. matches newlines), else 0.</summary>
public sealed class RegexReward(string pattern) : IRewardFunction
{
    private readonly Regex regex = new($@"\A(?:{pattern})\z", RegexOptions.Singleline);
    public string Name => "regex_match";
    public double[] Score(IReadOnlyList<RewardInput> inputs) => inputs.Select(i => regex.IsMatch(i.Completion) ? 1.0 : 0.0).ToArray();
}

/// <summary>1 when the completion is exactly &lt;t1&gt;…&lt;/t1&gt; &lt;t2&gt;…&lt;/t2&gt; … (each tag once, in order, only whitespace between), else 0.</summary>
public sealed class TagFormatReward(IReadOnlyList<string> tags) : IRewardFunction
{
    private readonly Regex regex = new(@"\A\s*" + string.Concat(tags.Select(t => $@"<{Regex.Escape(t)}>.*?</{Regex.Escape(t)}>\s*")) + @"\z", RegexOptions.Singleline);
    public string Name => "tag_format";

    public double[] Score(IReadOnlyList<RewardInput> inputs) => inputs.Select(i =>
        regex.IsMatch(i.Completion) && tags.All(t => Count(i.Completion, $"<{t}>") == 1 && Count(i.Completion, $"</{t}>") == 1) ? 1.0 : 0.0).ToArray();

    private static int Count(string text, string what)
    {
        int n = 0;
        for (int at = text.IndexOf(what, StringComparison.Ordinal); at >= 0; at = text.IndexOf(what, at + what.Length, StringComparison.Ordinal)) n++;
        return n;
    }
}

/// <summary>TRL's think_format_reward: 1 when the completion opens with &lt;think&gt;, has no second one, and closes it.</summary>
public sealed class ThinkFormatReward : IRewardFunction
{
    private static readonly Regex Pattern = new(@"\A<think>(?!.*<think>)(.*?)</think>.*$", RegexOptions.Singleline | RegexOptions.Multiline | RegexOptions.Compiled);
    public string Name => "think_format";
    public double[] Score(IReadOnlyList<RewardInput> inputs) => inputs.Select(i => Pattern.IsMatch(i.Completion) ? 1.0 : 0.0).ToArray();
}

/// <summary>1 when the completion (trimmed, inside a ``` or ```json fence if it has one) parses as JSON, else 0.</summary>
public sealed class JsonValidReward : IRewardFunction
{
    private static readonly Regex Fence = new(@"\A\s*```(?:json)?\s*\n(.*?)\n?```\s*\z", RegexOptions.Singleline | RegexOptions.Compiled);
    public string Name => "json_valid";

    public double[] Score(IReadOnlyList<RewardInput> inputs) => inputs.Select(i =>
    {
        var text = Fence.Match(i.Completion) is { Success: true } m ? m.Groups[1].Value : i.Completion.Trim();
        if (text.Length == 0) return 0.0;
        try
        {
            using var _ = JsonDocument.Parse(text);
            return 1.0;
        }
        catch (JsonException)
        {
            return 0.0;
        }
    }).ToArray();
}

/// <summary>
/// DAPO's soft overlong punishment (TRL get_soft_overlong_punishment), on completion tokens L: 0 up to max − cache,
/// then (max − cache − L) / cache down to −1 at max, −1 beyond.
/// </summary>
public sealed class LengthPenaltyReward(int maxCompletionLength, int softPunishCache) : IRewardFunction
{
    public string Name => "length_penalty";

    public double[] Score(IReadOnlyList<RewardInput> inputs) => inputs.Select(i =>
    {
        int free = maxCompletionLength - softPunishCache;
        if (i.CompletionTokens <= free) return 0.0;
        if (i.CompletionTokens <= maxCompletionLength) return (double)(free - i.CompletionTokens) / softPunishCache;
        return -1.0;
    }).ToArray();
}
