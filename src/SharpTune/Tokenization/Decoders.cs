using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace SharpTune.Tokenization;

/// <summary>Turns token strings back into text; each decoder maps a token list to a token list, Fuse joins.</summary>
internal abstract class Decoder
{
    public const string Supported = "ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence";

    public abstract List<string> DecodeChain(List<string> tokens, Func<string, bool> isAddedToken);

    public static Decoder? From(JsonElement? config, string file)
    {
        if (config is not { } c) return null;
        var type = c.String("type");
        return type switch
        {
            "ByteLevel" => new ByteLevelDecoder(),
            "Metaspace" => new MetaspaceDecoder(c.String("replacement") ?? "\u2581", PreTokenizer.MetaspacePrependScheme(c) != "never"),
            "Replace" => new ReplaceDecoder(Pattern.From(c.Child("pattern"), file), c.String("content") ?? ""),
            "ByteFallback" => new ByteFallbackDecoder(),
            "Fuse" => new FuseDecoder(),
            "Strip" => new StripDecoder(c.String("content") ?? " ", c.Int("start", 0), c.Int("stop", 0)),
            "Sequence" => new SequenceDecoder(c.GetProperty("decoders").EnumerateArray().Select(d => From(d, file)!).ToArray()),
            _ => throw TokenizerJson.Unsupported(file, "decoder", type, Supported),
        };
    }
}

internal sealed class SequenceDecoder(Decoder[] steps) : Decoder
{
    public override List<string> DecodeChain(List<string> tokens, Func<string, bool> isAddedToken)
    {
        foreach (var step in steps) tokens = step.DecodeChain(tokens, isAddedToken);
        return tokens;
    }
}

internal sealed class ByteLevelDecoder : Decoder
{
    public override List<string> DecodeChain(List<string> tokens, Func<string, bool> isAddedToken)
    {
        // Added tokens are written as-is; runs of ordinary tokens are turned back into bytes, then UTF-8.
        var output = new List<string>();
        var bytes = new List<byte>();
        foreach (var token in tokens)
        {
            if (isAddedToken(token))
            {
                Flush();
                output.Add(token);
                continue;
            }
            foreach (var c in token)
            {
                if (ByteLevelAlphabet.CharToByte.TryGetValue(c, out var b)) bytes.Add(b);
                else bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
            }
        }
        Flush();
        return output;

        void Flush()
        {
            if (bytes.Count == 0) return;
            output.Add(Utf8.Decode(bytes));
            bytes.Clear();
        }
    }
}

internal sealed class MetaspaceDecoder(string replacement, bool stripLeadingSpace) : Decoder
{
    public override List<string> DecodeChain(List<string> tokens, Func<string, bool> isAddedToken)
    {
        var output = new List<string>(tokens.Count);
        for (var i = 0; i < tokens.Count; i++)
        {
            var text = tokens[i].Replace(replacement, " ");
            if (i == 0 && stripLeadingSpace && text.StartsWith(' ')) text = text[1..];
            output.Add(text);
        }
        return output;
    }
}

internal sealed class ReplaceDecoder(Regex pattern, string content) : Decoder
{
    public override List<string> DecodeChain(List<string> tokens, Func<string, bool> isAddedToken) =>
        tokens.Select(t => pattern.Replace(t, content.Replace("$", "$$"))).ToList();
}

internal sealed class ByteFallbackDecoder : Decoder
{
    public override List<string> DecodeChain(List<string> tokens, Func<string, bool> isAddedToken)
    {
        var output = new List<string>(tokens.Count);
        var bytes = new List<byte>();
        foreach (var token in tokens)
        {
            if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
                && byte.TryParse(token.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out var b))
            {
                bytes.Add(b);
                continue;
            }
            if (bytes.Count > 0) { output.Add(Utf8.Decode(bytes)); bytes.Clear(); }
            output.Add(token);
        }
        if (bytes.Count > 0) output.Add(Utf8.Decode(bytes));
        return output;
    }
}

internal sealed class FuseDecoder : Decoder
{
    public override List<string> DecodeChain(List<string> tokens, Func<string, bool> isAddedToken) => [string.Concat(tokens)];
}

internal sealed class StripDecoder(string content, int start, int stop) : Decoder
{
    public override List<string> DecodeChain(List<string> tokens, Func<string, bool> isAddedToken) => tokens.Select(token =>
    {
        var c = content.Length > 0 ? content[0] : ' ';
        var startCut = 0;
        for (var i = 0; i < start && i < token.Length && token[i] == c; i++) startCut = i + 1;
        var stopCut = token.Length;
        for (var i = 0; i < stop; i++)
        {
            var index = token.Length - i - 1;
            if (index < startCut || token[index] != c) break;
            stopCut = index;
        }
        return token[startCut..stopCut];
    }).ToList();
}

internal static class Utf8
{
    /// <summary>UTF-8 decode with U+FFFD for invalid sequences (what TextDecoder and Rust's from_utf8_lossy do).</summary>
    public static string Decode(List<byte> bytes) => Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes));
}
