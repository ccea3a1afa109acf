using System.Text.Json;
using SharpTune.Tokenization;
using SharpTune.Tokenization.Jinja;

namespace SharpTune.Tests.Tokenization;

public sealed class HfTokenizerTests(TokenizerData data) : IClassFixture<TokenizerData>
{
    [Fact]
    public void SpecialTokensComeFromTheConfigFiles()
    {
        var llama2 = data.Tokenizer("llama2");
        Assert.Equal((1, 2, 0), (llama2.BosTokenId, llama2.EosTokenId, llama2.UnkTokenId));
        Assert.Equal(("<s>", "</s>"), (llama2.BosToken, llama2.EosToken));
        Assert.Null(llama2.PadTokenId);
        Assert.Equal(32000, llama2.VocabSize);
        Assert.Null(llama2.ChatTemplate);

        var qwen3 = data.Tokenizer("qwen3");
        Assert.Null(qwen3.BosTokenId);
        Assert.Equal(151645, qwen3.EosTokenId); // <|im_end|>
        Assert.Equal(151643, qwen3.PadTokenId); // <|endoftext|>
        Assert.Equal(151669, qwen3.VocabSize);
        Assert.Equal(151644, qwen3.TokenToId("<|im_start|>"));
        Assert.Equal("<|im_start|>", qwen3.IdToToken(151644));
        Assert.StartsWith("{%- if tools %}", qwen3.ChatTemplate);

        var gemma3 = data.Tokenizer("gemma3");
        Assert.Equal((2, 106), (gemma3.BosTokenId, gemma3.EosTokenId)); // <bos>, <end_of_turn>
        Assert.Equal(0, gemma3.PadTokenId);
    }

    [Fact]
    public void EncodeAddsTheTemplateProcessingBosOnlyWhenAsked()
    {
        var llama2 = data.Tokenizer("llama2");
        Assert.Equal([1, 22557, 1526], llama2.Encode("Hello world"));
        Assert.Equal([22557, 1526], llama2.Encode("Hello world", addSpecialTokens: false));
        Assert.Equal("Hello world", llama2.Decode(llama2.Encode("Hello world"), skipSpecialTokens: true));
        Assert.Equal("<s> Hello world", llama2.Decode(llama2.Encode("Hello world")));
    }

    [Fact]
    public void OffsetsPointIntoTheOriginalText()
    {
        var text = "Hello wörld 😀 <|im_end|>!";
        var qwen3 = data.Tokenizer("qwen3").EncodeWithOffsets(text, addSpecialTokens: false);
        Assert.Equal(qwen3.Ids.Count, qwen3.Offsets.Count);
        Assert.Equal("Hello", text[qwen3.Offsets[0].Start..qwen3.Offsets[0].End]);
        Assert.Equal(" w", text[qwen3.Offsets[1].Start..qwen3.Offsets[1].End]);
        Assert.Equal(" wörld", text[qwen3.Offsets[1].Start..qwen3.Offsets[3].End]);
        var imEnd = qwen3.Ids.ToList().IndexOf(151645);
        Assert.Equal("<|im_end|>", text[qwen3.Offsets[imEnd].Start..qwen3.Offsets[imEnd].End]);
        Assert.Equal((text.Length - 1, text.Length), qwen3.Offsets[^1]);

        // SentencePiece style: the prepended ▁ maps onto the first char; byte-fallback tokens share their char's span.
        var llama2 = data.Tokenizer("llama2").EncodeWithOffsets("Hi 𝐀", addSpecialTokens: true);
        Assert.Equal((0, 0), llama2.Offsets[0]); // <s>
        Assert.Equal("Hi", "Hi 𝐀"[llama2.Offsets[1].Start..llama2.Offsets[1].End]);
        Assert.All(llama2.Offsets.Skip(llama2.Offsets.Count - 4), o => Assert.Equal((3, 5), o)); // <0xF0><0x9D><0x90><0x80>
    }

    [Fact]
    public void DecodingAnIdOutsideTheVocabularyNamesTheId()
    {
        var e = Assert.Throws<InvalidInputException>(() => data.Tokenizer("llama2").Decode([1, 99999]));
        Assert.Equal("token id 99999 is outside the vocabulary (0..31999)", e.Message);
    }

    [Theory]
    [InlineData("normalizer", "{\"type\": \"BertNormalizer\"}", "unsupported normalizer type 'BertNormalizer'; supported: NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, Sequence")]
    [InlineData("pre_tokenizer", "{\"type\": \"UnicodeScripts\"}", "unsupported pre_tokenizer type 'UnicodeScripts'; supported: ByteLevel, Split, Metaspace, Digits, Whitespace, WhitespaceSplit, Punctuation, Sequence")]
    [InlineData("decoder", "{\"type\": \"CTC\"}", "unsupported decoder type 'CTC'; supported: ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence")]
    [InlineData("model", "{\"type\": \"Unigram\", \"vocab\": []}", "unsupported model type 'Unigram'; supported: BPE (byte-level and SentencePiece-style)")]
    public void UnsupportedComponentsNameFileTypeAndAlternatives(string key, string json, string expected)
    {
        var dir = TestPaths.TempDir();
        var tokenizer = new Dictionary<string, object?>
        {
            ["model"] = JsonDocument.Parse("{\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}").RootElement,
            [key] = JsonDocument.Parse(json).RootElement,
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), JsonSerializer.Serialize(tokenizer));
        var e = Assert.Throws<InvalidInputException>(() => HfTokenizer.FromDirectory(dir));
        Assert.Equal($"{Path.Combine(dir, "tokenizer.json")}: {expected}", e.Message);
    }

    [Fact]
    public void ApplyChatTemplatePassesToolsAndSpecialTokens()
    {
        var qwen3 = data.Tokenizer("qwen3");
        var messages = new List<IReadOnlyDictionary<string, object?>>
        {
            new Dictionary<string, object?> { ["role"] = "user", ["content"] = "Weather?" },
        };
        var tools = new List<object?>
        {
            new Dictionary<string, object?> { ["type"] = "function", ["function"] = new Dictionary<string, object?> { ["name"] = "get_weather", ["parameters"] = new Dictionary<string, object?>() } },
        };
        var rendered = qwen3.ApplyChatTemplate(messages, addGenerationPrompt: true, new Dictionary<string, object?> { ["tools"] = tools, ["enable_thinking"] = false });
        Assert.Equal(
            "<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" +
            "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {}}}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" +
            "<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n", rendered);
        var llama3 = data.Tokenizer("llama3").ApplyChatTemplate(messages);
        Assert.Equal("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWeather?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", llama3);
    }

    [Fact]
    public void AddedTokensHonourNormalizedLstripAndRstrip()
    {
        var dir = TestPaths.TempDir();
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), """
            {"normalizer": {"type": "Lowercase"},
             "model": {"type": "BPE", "vocab": {"h": 0, "e": 1, "l": 2, "o": 3, " ": 4}, "merges": []},
             "added_tokens": [
               {"id": 5, "content": "HELLO", "special": false, "normalized": true, "lstrip": false, "rstrip": false, "single_word": false},
               {"id": 6, "content": "<x>", "special": true, "normalized": false, "lstrip": true, "rstrip": true, "single_word": false}]}
            """);
        var tokenizer = HfTokenizer.FromDirectory(dir);
        var encoding = tokenizer.EncodeWithOffsets("HeLLo  <x>  o");
        Assert.Equal([5, 6, 3], encoding.Ids);
        Assert.Equal([(0, 5), (5, 12), (12, 13)], encoding.Offsets);
        Assert.Equal("HELLO <x> o", tokenizer.Decode(encoding.Ids)); // no decoder: tokens joined by spaces, as the references do
        Assert.Equal("HELLO o", tokenizer.Decode(encoding.Ids, skipSpecialTokens: true));
    }

    [Fact]
    public void ATokenizerWithoutTemplateSaysWhatToConfigure()
    {
        var e = Assert.Throws<InvalidInputException>(() => data.Tokenizer("llama2").ApplyChatTemplate([]));
        Assert.Contains("no chat_template", e.Message);
    }
}
