using System.Text.Json;
using SharpTune.Config;
using SharpTune.Hub;
using SharpTune.Tokenization;

namespace SharpTune.Data;

/// <summary>Where a pretraining stream stands: the next row it gives, the source rows read (this pass), the pass, and the tokens read but not yet in a row.</summary>
public sealed record PretrainCursor(long NextRow, long SourceRowsRead, int Pass, int[] Pending);

/// <summary>
/// pretraining_dataset: documents read in order from each source in turn, as training consumes them — never all in memory,
/// no cache. Each document is tokenized with EOS appended and the token stream is cut into rows of exactly sequence_len
/// (labels = ids), as `type: pretrain` does for datasets. When the sources end before training does, the stream starts
/// over (a new pass). Rows are read forward only; <see cref="Cursor"/> / <see cref="Seek"/> carry the position across a resume.
/// </summary>
public sealed class PretrainStream : IDisposable
{
    private readonly IReadOnlyList<(DatasetConfig Dataset, IReadOnlyList<SplitPart> Parts, RowFormatter Formatter)> _sources;
    private readonly HfTokenizer _tokenizer;
    private readonly int _sequenceLen;
    private readonly List<int> _pending = [];
    private IEnumerator<(RowFormatter Formatter, SourceRow Row)>? _rows;
    private long _nextRow, _sourceRowsRead;
    private int _pass;

    public PretrainStream(TrainConfig config, HfTokenizer tokenizer, string configDir, HubLookup? hub = null)
    {
        if (config.PretrainingDataset.Count == 0) throw new InvalidInputException("pretraining_dataset: empty; expected at least one mapping with path");
        _tokenizer = tokenizer;
        _sequenceLen = config.SequenceLen;
        _sources = config.PretrainingDataset.Select((d, i) =>
        {
            string key = $"pretraining_dataset[{i}]";
            var dataset = d with { Type = "pretrain", Field = d.Field ?? d.TextColumn };
            return (dataset, DatasetSources.ResolveParts(dataset, configDir, key, hub), new RowFormatter(dataset, config, tokenizer, key, preference: false));
        }).ToList();
    }

    /// <summary>Passes started over the sources (1 while the first is read).</summary>
    public int Pass => _pass + 1;

    public PretrainCursor Cursor => new(_nextRow, _sourceRowsRead, _pass, _pending.ToArray());

    /// <summary>Continues from a saved cursor: the source rows already read are skipped without tokenizing.</summary>
    public void Seek(PretrainCursor cursor)
    {
        _rows?.Dispose();
        _rows = null;
        (_nextRow, _pass) = (cursor.NextRow, cursor.Pass);
        _pending.Clear();
        _pending.AddRange(cursor.Pending);
        _sourceRowsRead = 0;
        var rows = Open();
        for (long i = 0; i < cursor.SourceRowsRead; i++)
            if (!rows.MoveNext()) throw new InvalidInputException($"pretraining_dataset: the checkpoint is {cursor.SourceRowsRead} rows into pass {cursor.Pass + 1} but the data now has {i}; resume with the data it was trained on");
        _sourceRowsRead = cursor.SourceRowsRead;
    }

    /// <summary>Training row <paramref name="index"/> (sequence_len token ids); rows before it that were not asked for are read past.</summary>
    public int[] Row(long index)
    {
        if (index < _nextRow) throw new InvalidOperationException($"pretraining stream: row {index} was already read (next is {_nextRow}); the stream reads forward only");
        while (_nextRow < index)
        {
            Fill();
            _pending.RemoveRange(0, _sequenceLen);
            _nextRow++;
        }
        Fill();
        var row = _pending.GetRange(0, _sequenceLen).ToArray();
        _pending.RemoveRange(0, _sequenceLen);
        _nextRow++;
        return row;
    }

    private void Fill()
    {
        while (_pending.Count < _sequenceLen)
        {
            var rows = _rows ?? Open();
            if (!rows.MoveNext())
            {
                if (_sourceRowsRead == 0)
                    throw new InvalidInputException($"pretraining_dataset: no rows in {string.Join(", ", _sources.Select(s => s.Dataset.Path))}");
                // The sources ended: start the next pass (axolotl's streamed datasets likewise restart when max_steps outlasts them).
                rows.Dispose();
                _rows = null;
                _pass++;
                _sourceRowsRead = 0;
                continue;
            }
            _sourceRowsRead++;
            var (formatter, source) = rows.Current;
            string text;
            try { text = formatter.PretrainText(source.Value); }
            catch (RowException e) { throw new InvalidInputException($"{source.Location}: {e.Message} (pretraining_dataset)"); }
            var ids = _tokenizer.Encode(text, addSpecialTokens: true);
            _pending.AddRange(ids);
            if (_tokenizer.EosTokenId is { } eos && (ids.Count == 0 || ids[^1] != eos)) _pending.Add(eos);
        }
    }

    private IEnumerator<(RowFormatter Formatter, SourceRow Row)> Open() =>
        _rows = _sources.SelectMany(s => DatasetSources.ReadParts(s.Dataset, s.Parts).Select(row => (s.Formatter, row))).GetEnumerator();

    public void Dispose() => _rows?.Dispose();

    public static string ToJson(PretrainCursor cursor) => JsonSerializer.Serialize(cursor);

    public static PretrainCursor FromJson(string json) =>
        JsonSerializer.Deserialize<PretrainCursor>(json) ?? throw new InvalidInputException("pretraining stream cursor: empty");
}
