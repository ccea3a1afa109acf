using System.Text.Json;

namespace SharpTune.Tokenization;

/// <summary>Adds special tokens around one encoded sequence (TemplateProcessing, Bert/Roberta, ByteLevel, Sequence).</summary>
internal sealed class PostProcessor
{
    public const string Supported = "TemplateProcessing, ByteLevel, BertProcessing, RobertaProcessing, Sequence";

    private readonly List<int[]> _specialIds;

    private PostProcessor(List<int[]> specialIds, int sequenceIndex)
    {
        _specialIds = specialIds;
        SequenceIndex = sequenceIndex;
    }

    /// <summary>Special-token id groups in order; the sequence goes before group <see cref="SequenceIndex"/>.</summary>
    public IReadOnlyList<int[]> SpecialIds => _specialIds;
    public int SequenceIndex { get; }

    public static PostProcessor? From(JsonElement? config, string file)
    {
        if (config is not { } c) return null;
        var type = c.String("type");
        switch (type)
        {
            case "ByteLevel":
                return null; // only affects offsets trimming, never ids
            case "TemplateProcessing":
            {
                var groups = new List<int[]>();
                var sequenceIndex = -1;
                var specials = c.Child("special_tokens");
                foreach (var piece in c.GetProperty("single").EnumerateArray())
                {
                    if (piece.Child("Sequence") is not null) { sequenceIndex = groups.Count; continue; }
                    var name = piece.GetProperty("SpecialToken").String("id")!;
                    var ids = specials?.Child(name)?.Child("ids") ?? throw new InvalidInputException($"{file}: post_processor special token '{name}' has no ids");
                    groups.Add(ids.EnumerateArray().Select(i => i.GetInt32()).ToArray());
                }
                return new PostProcessor(groups, sequenceIndex < 0 ? groups.Count : sequenceIndex);
            }
            case "BertProcessing":
            case "RobertaProcessing":
                return new PostProcessor([[c.GetProperty("cls")[1].GetInt32()], [c.GetProperty("sep")[1].GetInt32()]], 1);
            case "Sequence":
            {
                PostProcessor? found = null;
                foreach (var p in c.GetProperty("processors").EnumerateArray()) found = From(p, file) ?? found;
                return found;
            }
            default:
                throw TokenizerJson.Unsupported(file, "post_processor", type, Supported);
        }
    }
}
