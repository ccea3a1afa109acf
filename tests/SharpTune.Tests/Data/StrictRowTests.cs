using System.Security.Cryptography;
using System.Text;
using SharpTune.Data;
using static SharpTune.Tests.Data.DataTestKit;

namespace SharpTune.Tests.Data;

/// <summary>
/// Rows typed strictly: values of the wrong type, bytes that are not UTF-8, repeated keys and unknown roles are each a
/// file:row error (exit 2, nothing written), and --skip-bad-rows skips and counts them, lines that are not JSON included.
/// The data files are written as raw bytes: most of these cases are bytes no JSON writer produces.
/// </summary>
public class StrictRowTests
{
    private static readonly byte[] Good = Encoding.UTF8.GetBytes("{\"instruction\": \"Say hi\", \"output\": \"Hi.\"}\n");

    private static byte[] Bytes(params object[] parts) =>
        parts.SelectMany(p => p switch { string s => Encoding.UTF8.GetBytes(s), byte[] b => b, _ => throw new ArgumentException("string or bytes") }).ToArray();

    /// <summary>Runs `sharptune prepare` on one data file; returns the exit code and the last stderr line, and checks that the folder is unchanged.</summary>
    private static (int Code, string Error, string File) PrepareCli(string name, byte[] data, string type, string dsType = "")
    {
        string dir = TestPaths.TempDir();
        string file = Path.Combine(dir, name);
        File.WriteAllBytes(file, data);
        string yaml = Path.Combine(dir, "config.yaml");
        File.WriteAllText(yaml, $"base_model: {TokenizerDir("llama3")}\ndatasets:\n  - path: {name}\n    type: {type}\n{(dsType.Length > 0 ? $"    ds_type: {dsType}\n" : "")}" +
                                $"sequence_len: 256\noutput_dir: {Path.Combine(dir, "out")}\n");
        var before = Snapshot(dir);
        var stderr = new StringWriter();
        int code = SharpTune.Cli.Program.Run(["prepare", yaml], new StringWriter(), stderr);
        Assert.Equal(before, Snapshot(dir));
        return (code, stderr.ToString().Trim().Split('\n')[^1], file);
    }

    /// <summary>Every file and folder under <paramref name="dir"/> with a hash of its bytes.</summary>
    private static string Snapshot(string dir) => string.Join("\n", Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
        .Select(p => Path.GetRelativePath(dir, p) + (File.Exists(p) ? " " + Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(p))) : "/")));

    [Fact]
    public void Null_content_is_a_row_error()
    {
        var data = Bytes("{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello.\"}]}\n",
                         "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": null}]}\n");
        var (code, error, file) = PrepareCli("chat.jsonl", data, "chat_template");
        Assert.Equal(2, code);
        Assert.Equal($"error: {file}:2: messages[1].content is null; expected the message text (a string; null only in a message with tool_calls) (datasets[0], type chat_template)", error);
    }

    [Fact]
    public void A_number_where_text_belongs_is_a_row_error()
    {
        var (code, error, file) = PrepareCli("rows.jsonl", Bytes(Good, "{\"instruction\": \"Add 3 and 4\", \"output\": 7}\n"), "alpaca");
        Assert.Equal(2, code);
        Assert.Equal($"error: {file}:2: field \"output\" is the number 7; expected a string (datasets[0], type alpaca)", error);
    }

    [Fact]
    public void Invalid_utf8_is_reported_with_its_byte_offset()
    {
        // "caf" + 0xC3 without its continuation byte (a Latin-1 "é" cut in half) on line 2.
        var (code, error, file) = PrepareCli("rows.jsonl", Bytes(Good, "{\"instruction\": \"caf", new byte[] { 0xC3 }, "\", \"output\": \"x\"}\n"), "alpaca");
        Assert.Equal(2, code);
        int column = "{\"instruction\": \"caf".Length;
        Assert.Equal($"error: {file}:2: invalid UTF-8 at byte {column + 1} of the line (offset {Good.Length + column} in the file): " +
                     "the character starting with 0xC3 is incomplete or malformed; the text must be UTF-8 (datasets[0], type alpaca)", error);
    }

    [Fact]
    public void Duplicate_keys_are_a_row_error()
    {
        var (code, error, file) = PrepareCli("rows.jsonl", Bytes("{\"instruction\": \"a\", \"output\": \"b\", \"output\": \"c\"}\n"), "alpaca");
        Assert.Equal(2, code);
        Assert.Equal($"error: {file}:1: duplicate key \"output\" in the top-level object; each key may appear once per object (datasets[0], type alpaca)", error);
        var nested = PrepareCli("chat.jsonl", Bytes("{\"messages\": [{\"role\": \"user\", \"role\": \"assistant\", \"content\": \"Hi\"}]}\n"), "chat_template");
        Assert.Equal($"error: {nested.File}:1: duplicate key \"role\" in messages[0]; each key may appear once per object (datasets[0], type chat_template)", nested.Error);
    }

    [Fact]
    public void Unknown_sharegpt_speaker_is_a_row_error()
    {
        var data = Bytes("{\"conversations\": [{\"from\": \"human\", \"value\": \"Hi\"}, {\"from\": \"gpt\", \"value\": \"Hello.\"}]}\n",
                         "{\"conversations\": [{\"from\": \"human\", \"value\": \"Hi\"}, {\"from\": \"alien\", \"value\": \"Zork.\"}]}\n");
        var (code, error, file) = PrepareCli("talk.jsonl", data, "sharegpt");
        Assert.Equal(2, code);
        Assert.Equal($"error: {file}:2: conversations[1] role \"alien\" is not a known role; known: user, human, assistant, gpt, model, bot, system, tool, function, ipython " +
                     "(map others with roles:, e.g. roles: {user: [alien]}) (datasets[0], type sharegpt)", error);
    }

    [Fact]
    public void Lone_surrogate_escape_is_a_row_error()
    {
        var (code, error, file) = PrepareCli("rows.jsonl", Bytes("{\"instruction\": \"a\\ud800b\", \"output\": \"c\"}\n"), "alpaca");
        Assert.Equal(2, code);
        Assert.Equal($"error: {file}:1: lone surrogate escape in the string at instruction; a \\uD800-\\uDFFF escape must be a high-low pair (datasets[0], type alpaca)", error);
    }

    [Fact]
    public void Skip_bad_rows_skips_and_counts_lines_that_are_not_json_too()
    {
        string file = Path.Combine(TestPaths.TempDir(), "mixed.jsonl");
        File.WriteAllBytes(file, Bytes(
            Good,                                                             // 1
            "{\"instruction\": oops}\n",                                       // 2 not JSON
            new byte[] { 0, 0, 0, 0, (byte)'\n' },                            // 3 NUL bytes (a zero-filled block)
            "{\"instruction\": \"Say yo\", \"output\": \"Yo.\"}\n",            // 4
            "{\"instruction\": \"a\", \"instruction\": \"b\", \"output\": \"c\"}\n", // 5 duplicate key
            "{\"instruction\": \"", new byte[] { 0xFF }, "\", \"output\": \"x\"}\n", // 6 invalid UTF-8
            "{\"instruction\": \"x\", \"output\": null}\n",                    // 7 null text
            "\n",                                                             // 8 blank: not a row
            "{\"instruction\": \"cut\", \"outp"));                            // 9 cut off, no newline
        var rows = DatasetSources.ReadRows(file, SourceFileKind.Jsonl).ToList();
        Assert.Equal([1L, 2, 3, 4, 5, 6, 7, 9], rows.Select(r => r.Row));
        Assert.Equal("not valid JSON at byte 17 of the line (offset 59 in the file) ('o' is an invalid start of a value)", rows[1].Error);
        Assert.Equal("NUL byte at byte 1 of the line (offset 65 in the file); expected text", rows[2].Error);
        Assert.Equal("duplicate key \"instruction\" in the top-level object; each key may appear once per object", rows[4].Error);
        Assert.Equal("invalid UTF-8 at byte 18 of the line (offset 186 in the file): 0xFF never occurs in UTF-8; the text must be UTF-8", rows[5].Error);
        Assert.Null(rows[6].Error);
        Assert.StartsWith("not valid JSON at byte ", rows[7].Error);
        Assert.EndsWith("; the file ends inside this line (cut off?)", rows[7].Error);

        var warnings = new List<string>();
        var data = Prepare(MakeConfig(file, "alpaca"), Llama3, warnings, new DataOptions { SkipBadRows = true });
        Assert.Equal(2, data.Train.Count);
        Assert.Equal(8, data.Stats.RowsRead);
        Assert.Equal(6, data.Stats.DroppedBad);
        Assert.Equal($"datasets[0] ({file}): skipped 6 malformed row(s) of 8; first: {file}:2: not valid JSON at byte 17 of the line (offset 59 in the file) ('o' is an invalid start of a value)",
            Assert.Single(warnings));
        // Without the option the first of them stops preparation.
        var e = Assert.Throws<InvalidInputException>(() => Prepare(MakeConfig(file, "alpaca"), Llama3));
        Assert.Equal($"{file}:2: not valid JSON at byte 17 of the line (offset 59 in the file) ('o' is an invalid start of a value) (datasets[0], type alpaca)", e.Message);
    }

    [Fact]
    public void Json_array_rows_are_parsed_one_by_one_and_a_broken_array_names_line_and_byte()
    {
        string dir = TestPaths.TempDir();
        string file = Path.Combine(dir, "rows.json");
        File.WriteAllBytes(file, Bytes("[\n  {\"instruction\": \"Say hi\", \"output\": \"Hi.\"},\n  {\"instruction\": \"a\", \"output\": \"b\", \"output\": \"c\"},\n",
                                       "  {\"instruction\": \"", new byte[] { 0xC0, 0xAF }, "\", \"output\": \"x\"},\n  {\"instruction\": \"Say yo\", \"output\": \"Yo.\"}\n]\n"));
        var rows = DatasetSources.ReadRows(file, SourceFileKind.Json).ToList();
        Assert.Equal(4, rows.Count);
        Assert.Equal("duplicate key \"output\" in the top-level object; each key may appear once per object", rows[1].Error);
        long offset = File.ReadAllBytes(file).AsSpan().IndexOf((byte)0xC0);
        Assert.Equal($"invalid UTF-8 at byte offset {offset} in the file: 0xC0 never occurs in UTF-8; the text must be UTF-8", rows[2].Error);
        var warnings = new List<string>();
        var data = Prepare(MakeConfig(file, "alpaca"), Llama3, warnings, new DataOptions { SkipBadRows = true });
        Assert.Equal(2, data.Train.Count);
        Assert.Equal(2, data.Stats.DroppedBad);

        string broken = Path.Combine(dir, "broken.json");
        File.WriteAllText(broken, "[\n  {\"instruction\": \"Say hi\", \"output\": \"Hi.\"},\n  {\"instruction\": oops}\n]\n");
        var e = Assert.Throws<InvalidInputException>(() => DatasetSources.ReadRows(broken, SourceFileKind.Json).ToList());
        Assert.Equal($"{broken}: not valid JSON at line 3, byte 19 (in row 2 of the array: 'o' is an invalid start of a value); a JSON array cannot be read past a syntax error, " +
                     "so this stops even with --skip-bad-rows: fix the file or convert it to JSON lines", e.Message);
        string cut = Path.Combine(dir, "cut.json");
        File.WriteAllText(cut, "[{\"instruction\": \"Say hi\", \"output\": \"Hi.\"}, {\"instr");
        e = Assert.Throws<InvalidInputException>(() => DatasetSources.ReadRows(cut, SourceFileKind.Json).ToList());
        Assert.Equal($"{cut}: ends inside row 2 of the array (cut off?); expected the array to close with ]", e.Message);
    }

    [Fact]
    public void Csv_rows_with_missing_fields_or_bad_bytes_name_the_line_and_the_header()
    {
        var data = Bytes("instruction,input,output\nSay hi,,Hi.\nOnly two,fields\n\"Say \"\"yo\"\"\",,Yo", new byte[] { 0xE2, 0x82 }, "\n");
        var (code, error, file) = PrepareCli("rows.csv", data, "alpaca");
        Assert.Equal(2, code);
        // Not "missing field "output" … found keys: instruction, input, output": the row is short, the header is fine.
        Assert.Equal($"error: {file}:3: 2 field(s) where the header (line 1) has 3: instruction, input, output (datasets[0], type alpaca)", error);
        var rows = DatasetSources.ReadRows(file, SourceFileKind.Csv).ToList();
        Assert.Equal([2L, 3, 4], rows.Select(r => r.Row));
        Assert.Equal("Hi.", rows[0].Value!["output"]!.GetValue<string>());
        int offset = data.AsSpan().IndexOf((byte)0xE2);
        Assert.Equal($"invalid UTF-8 at byte 17 of line 4 (offset {offset} in the file): the text ends inside the character starting with 0xE2; the text must be UTF-8", rows[2].Error);
        Assert.Equal(17, offset - data.AsSpan()[..offset].LastIndexOf((byte)'\n'));
    }

    [Fact]
    public void Text_lines_with_bad_bytes_are_bad_rows()
    {
        string file = Path.Combine(TestPaths.TempDir(), "corpus.txt");
        File.WriteAllBytes(file, Bytes("first document\r\nsecond ", new byte[] { 0x80 }, " document\n\nthird\n"));
        var rows = DatasetSources.ReadRows(file, SourceFileKind.Text).ToList();
        Assert.Equal([1L, 2, 4], rows.Select(r => r.Row));
        Assert.Equal("first document", rows[0].Value!["text"]!.GetValue<string>());
        Assert.Equal("invalid UTF-8 at byte 8 of the line (offset 23 in the file): 0x80 continues no character; the text must be UTF-8", rows[1].Error);
        Assert.Equal("third", rows[2].Value!["text"]!.GetValue<string>());
    }

    [Fact]
    public void A_utf16_file_is_refused_with_what_to_do()
    {
        var (code, error, file) = PrepareCli("rows.jsonl", Encoding.Unicode.GetPreamble().Concat(Encoding.Unicode.GetBytes("{\"text\": \"hi\"}\n")).ToArray(), "completion");
        Assert.Equal(2, code);
        Assert.Equal($"error: {file}: is UTF-16 or UTF-32 text (byte-order mark 0xFF 0xFE); expected UTF-8: convert it (iconv -f UTF-16 -t UTF-8)", error);
    }

    private sealed class AlpacaRow
    {
        public string Instruction { get; set; } = "";
        public string Output { get; set; } = "";
    }

    [Fact]
    public async Task A_damaged_parquet_row_group_names_the_file()
    {
        string dir = TestPaths.TempDir();
        string file = Path.Combine(dir, "rows.parquet");
        await Parquet.Serialization.ParquetSerializer.SerializeAsync(
            Enumerable.Range(0, 50).Select(i => new AlpacaRow { Instruction = $"Say {i}", Output = $"{i}." }).ToList(), file);
        var bytes = File.ReadAllBytes(file);
        int footer = BitConverter.ToInt32(bytes, bytes.Length - 8);
        // The page headers and data between the leading "PAR1" and the footer: overwritten, the footer left intact.
        for (int i = 4; i < bytes.Length - 8 - footer; i++) bytes[i] = 0xEE;
        var (code, error, damaged) = PrepareCli("rows.parquet", bytes, "alpaca");
        Assert.Equal(2, code);
        Assert.StartsWith($"error: {damaged}: row group 1 of 1 (rows from 1) is not readable (", error);
        Assert.EndsWith("); the parquet file is damaged: write it again", error);
        // A cut-off file has no footer at all.
        var (cutCode, cutError, cut) = PrepareCli("rows.parquet", File.ReadAllBytes(file)[..(bytes.Length / 2)], "alpaca");
        Assert.Equal(2, cutCode);
        Assert.StartsWith($"error: {cut}: not a readable parquet file (", cutError);
    }
}
