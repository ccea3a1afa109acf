using System.Text.Json;
using SharpTune.Config;

namespace SharpTune.Data;

/// <summary>
/// The elements of a top-level JSON array, streamed one at a time as their raw bytes (a multi-GB array is never held
/// whole), so that each element is parsed strictly on its own and a bad one spoils one row. A syntax error in the array
/// itself cannot be stepped over — where the next row starts is unknown — and stops the file with its line and byte.
/// </summary>
public sealed class JsonArrayStream(Stream stream, string file) : IDisposable
{
    private readonly ReadWindow window = new(stream, Utf8Lines.MaxLineBytes);
    private bool begun, done;
    private JsonReaderState state = new(new JsonReaderOptions { MaxDepth = StrictJson.MaxDepth + 1 });
    private long index;

    /// <summary>The next element's bytes (valid until the next call) and their offset in the file; false after the closing ].</summary>
    public bool TryNext(out ReadOnlyMemory<byte> element, out long offset)
    {
        element = default;
        offset = 0;
        while (!done)
        {
            Step step;
            try
            {
                step = Read(window.AtEnd);
            }
            catch (JsonException e)
            {
                // At the end of the file the reader calls a cut-off row a syntax error; read as unfinished data it is incomplete.
                if (window.AtEnd && !ThrowsWhenUnfinished()) throw new InvalidInputException($"{file}: ends inside row {index + 1} of the array (cut off?); expected the array to close with ]");
                throw new InvalidInputException($"{file}: not valid JSON at line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1} (in row {index + 1} of the array: " +
                    $"{StrictJson.Reason(e)}); a JSON array cannot be read past a syntax error, so this stops even with --skip-bad-rows: fix the file or convert it to JSON lines");
            }
            if (!step.Complete)
            {
                if (window.AtEnd) throw new InvalidInputException($"{file}: ends inside row {index + 1} of the array (cut off?); expected the array to close with ]");
                Fill();
                continue;
            }
            state = step.State;
            if (step.Kind == StepKind.Begin)
            {
                begun = true;
                window.Start += step.Consumed;
                continue;
            }
            if (step.Kind == StepKind.End)
            {
                done = true;
                window.Start += step.Consumed;
                RequireOnlyWhitespaceAfter();
                return false;
            }
            element = window.Bytes.AsMemory(window.Start + step.TokenStart, step.Consumed - step.TokenStart);
            offset = window.Offset + window.Start + step.TokenStart;
            window.Start += step.Consumed;
            index++;
            return true;
        }
        return false;
    }

    private enum StepKind { Begin, Element, End }

    private readonly record struct Step(bool Complete, StepKind Kind, int TokenStart, int Consumed, JsonReaderState State);

    /// <summary>Reads the opening [, one element or the closing ] from the buffered bytes; incomplete when more bytes are needed.</summary>
    private Step Read(bool final)
    {
        var reader = new Utf8JsonReader(window.Unread, final, state);
        if (!reader.Read()) return default;
        if (!begun)
        {
            if (reader.TokenType != JsonTokenType.StartArray) throw new InvalidInputException($"{file}: top level is not an array");
            return new Step(true, StepKind.Begin, 0, (int)reader.BytesConsumed, reader.CurrentState);
        }
        if (reader.TokenType == JsonTokenType.EndArray) return new Step(true, StepKind.End, 0, (int)reader.BytesConsumed, reader.CurrentState);
        int tokenStart = (int)reader.TokenStartIndex;
        if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray && !reader.TrySkip()) return default;
        return new Step(true, StepKind.Element, tokenStart, (int)reader.BytesConsumed, reader.CurrentState);
    }

    private bool ThrowsWhenUnfinished()
    {
        try
        {
            Read(final: false);
            return false;
        }
        catch (JsonException)
        {
            return true;
        }
    }

    private void Fill() => window.Fill(() => $"{file}: row {index + 1} of the array is larger than {Utf8Lines.MaxLineBytes >> 20} MiB");

    private void RequireOnlyWhitespaceAfter()
    {
        while (true)
        {
            int other = window.Unread.IndexOfAnyExcept(" \t\r\n"u8);
            if (other >= 0) throw new InvalidInputException($"{file}: more text after the array's closing ] at byte offset {window.Offset + window.Start + other}; expected one array of rows");
            if (window.AtEnd) return;
            window.Start = window.End;
            Fill();
        }
    }

    public void Dispose() => stream.Dispose();
}
