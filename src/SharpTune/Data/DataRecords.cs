using SharpTune.Tokenization;

namespace SharpTune.Data;

/// <summary>One supervised training row: token ids and labels of the same length; label -100 where no loss is taken.</summary>
public sealed record TokenizedExample(int[] InputIds, int[] Labels)
{
    /// <summary>Tokens that carry a label (are predicted by the loss).</summary>
    public int TrainableTokens
    {
        get
        {
            int n = 0;
            foreach (var l in Labels) if (l != TokenLabels.IgnoreIndex) n++;
            return n;
        }
    }
}

/// <summary>
/// One preference pair. Completion ids exclude the prompt and end with the EOS / end-of-turn token;
/// prompt + chosen (or prompt + rejected) is the full sequence the policy scores.
/// </summary>
public sealed record PreferenceExample(int[] PromptIds, int[] ChosenIds, int[] RejectedIds);

/// <summary>One unpaired (KTO) example: a completion of the prompt labelled desirable or undesirable.</summary>
public sealed record UnpairedExample(int[] PromptIds, int[] CompletionIds, bool Desirable);

/// <summary>
/// One prompt for online RL (GRPO): its token ids as the policy continues them, the same prompt as text, and the whole
/// source row as JSON (reward functions read fields such as the reference answer from it).
/// </summary>
public sealed record PromptExample(int[] PromptIds, string PromptText, string RowJson);

/// <summary>What preparation produced: supervised rows, preference pairs or unpaired (KTO) examples (one kind per run), split into train and eval.</summary>
public sealed record PreparedData(
    IReadOnlyList<TokenizedExample> Train,
    IReadOnlyList<TokenizedExample> Eval,
    IReadOnlyList<PreferenceExample> PreferenceTrain,
    IReadOnlyList<PreferenceExample> PreferenceEval,
    DataStats Stats)
{
    public IReadOnlyList<UnpairedExample> UnpairedTrain { get; init; } = [];
    public IReadOnlyList<UnpairedExample> UnpairedEval { get; init; } = [];
    public IReadOnlyList<PromptExample> PromptTrain { get; init; } = [];
    public IReadOnlyList<PromptExample> PromptEval { get; init; } = [];
}

/// <summary>Counts over everything read (train and eval sources together), as `sharptune prepare` prints them.</summary>
public sealed record DataStats
{
    /// <summary>Rows read from the sources (before any drop).</summary>
    public long RowsRead { get; init; }
    /// <summary>Rows (or pretraining chunks) kept, before the train/eval split.</summary>
    public long RowsKept { get; init; }
    /// <summary>Rows longer than sequence_len dropped (excess_length_strategy: drop).</summary>
    public long DroppedTooLong { get; init; }
    /// <summary>Rows cut to sequence_len (excess_length_strategy: truncate).</summary>
    public long Truncated { get; init; }
    /// <summary>Rows without a single label token (nothing to learn from) dropped.</summary>
    public long DroppedNoTrainableTokens { get; init; }
    /// <summary>Malformed rows skipped (only with skip_bad_rows).</summary>
    public long DroppedBad { get; init; }
    /// <summary>Rows removed by exact deduplication.</summary>
    public long DroppedDuplicate { get; init; }
    /// <summary>Tokens in the kept rows (prompt + completions for preference pairs).</summary>
    public long Tokens { get; init; }
    /// <summary>Tokens that carry a label.</summary>
    public long TrainableTokens { get; init; }
    public int TrainRows { get; init; }
    public int EvalRows { get; init; }
    /// <summary>True when the rows came from the prepared-dataset cache instead of tokenizing.</summary>
    public bool FromCache { get; init; }
    /// <summary>Cache key (hex) of this preparation.</summary>
    public string CacheKey { get; init; } = "";
}
