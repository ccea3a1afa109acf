using System.Text.Json;
using SharpTune.Tokenization;
using SharpTune.Tokenization.Jinja;
using Xunit.Abstractions;

namespace SharpTune.Tests.Tokenization;

/// <summary>
/// Every axolotl template name renders sample conversations as @huggingface/jinja renders axolotl's own text
/// (tools/tokenizer-reference/axolotl-templates.mjs); where @huggingface/jinja fails or disagrees with Python Jinja2
/// as transformers configures it (render_axolotl_python.py), the rendering must equal Python's, which is what axolotl
/// produces.
/// </summary>
public sealed class AxolotlChatTemplateTests(ITestOutputHelper output)
{
    private static readonly DateTimeOffset Pinned = new(2025, 1, 15, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void NamesAreAxolotlsChatTemplateEnum()
    {
        // axolotl src/axolotl/utils/schemas/enums.py ChatTemplate, less jinja and tokenizer_default.
        string[] axolotl =
        [
            "alpaca", "chatml", "mistral_v1", "mistral_v2v3", "mistral_v3_tekken", "mistral_v7_tekken", "gemma", "cohere", "llama3",
            "llama3_2_vision", "llama4", "phi_3", "phi_35", "deepseek_v2", "deepseek_v3", "jamba", "qwen_25", "qwen3", "qwen3_5",
            "falcon_h1", "nemotron_h", "exaone", "exaone4", "metharme", "pixtral", "llava", "qwen2_vl", "gemma3", "gemma3n", "gemma4",
            "command_a", "command_a_tool_use", "command_a_rag", "aya",
        ];
        Assert.Equal(axolotl, BuiltInChatTemplates.AxolotlNames);
        foreach (var name in BuiltInChatTemplates.Names) Assert.NotEmpty(BuiltInChatTemplates.Get(name));
        using var doc = TokenizerData.ReadJson("axolotl-template-cases.json");
        Assert.Equal(axolotl.Order(StringComparer.Ordinal), doc.RootElement.GetProperty("templates").EnumerateArray().Select(t => t.GetString()!));
    }

    [Fact]
    public void ValuesAreCheckedWithTheAllowedList()
    {
        Assert.Null(BuiltInChatTemplates.Problem("qwen3"));
        Assert.Null(BuiltInChatTemplates.Problem("jinja"));
        Assert.Null(BuiltInChatTemplates.Problem("tokenizer_default"));
        Assert.Null(BuiltInChatTemplates.Problem("tokenizer_default_fallback_chatml"));
        Assert.Equal("'tokenizer_default_fallback_vicuna' falls back to 'vicuna', which is not a chat template name; expected tokenizer_default_fallback_NAME with NAME one of " +
                     string.Join(", ", BuiltInChatTemplates.Names), BuiltInChatTemplates.Problem("tokenizer_default_fallback_vicuna"));
        Assert.Equal("'Llama3' is not a chat template name; expected one of " + BuiltInChatTemplates.AllowedText, BuiltInChatTemplates.Problem("Llama3"));
        Assert.StartsWith("alpaca, chatml, mistral_v1, ", BuiltInChatTemplates.AllowedText);
        Assert.EndsWith(", aya, llama2, mistral, phi3, jinja (with chat_template_jinja), tokenizer_default, tokenizer_default_fallback_NAME (NAME one of the names before)",
            BuiltInChatTemplates.AllowedText);
    }

    [Fact]
    public void ConversationsRenderLikeTheReferences()
    {
        using var doc = TokenizerData.ReadJson("axolotl-template-cases.json");
        var templates = new Dictionary<string, ChatTemplate>();
        var failures = new List<string>();
        int sameAsJs = 0, arbitrated = 0, raised = 0, bothFailed = 0, total = 0;
        foreach (var (c, index) in doc.RootElement.GetProperty("cases").EnumerateArray().Select((c, i) => (c, i)))
        {
            total++;
            string name = c.GetProperty("template").GetString()!;
            if (!templates.TryGetValue(name, out var template))
                templates[name] = template = new ChatTemplate(BuiltInChatTemplates.Get(name), new FixedClock(Pinned));
            var context = c.GetProperty("context").EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value);
            string? js = c.TryGetProperty("output", out var o) ? o.GetString() : null;
            string? python = c.GetProperty("python").GetString();
            string? rendered = null;
            Exception? error = null;
            try { rendered = template.Render(context); }
            catch (Exception e) { error = e; }
            string where = $"#{index} {name} ({c.GetProperty("context").GetProperty("messages").GetArrayLength()} messages)";
            if (python != null)
            {
                if (rendered == python) { if (rendered == js) sameAsJs++; else arbitrated++; }
                else failures.Add($"{where}: rendered {(error?.Message ?? JsonSerializer.Serialize(rendered))}\n   expected {JsonSerializer.Serialize(python)}");
                continue;
            }
            // Python failed: a template's raise_exception must be raised with the same reason; other failures must fail too
            // (or, where only Python fails, match @huggingface/jinja).
            if (js != null && rendered == js) { sameAsJs++; continue; }
            string pythonError = c.GetProperty("python_error").GetString()!;
            if (pythonError.StartsWith("TemplateError: ", StringComparison.Ordinal))
            {
                raised++;
                string reason = pythonError["TemplateError: ".Length..];
                if (error is not TemplateException { RaisedByTemplate: true } te || te.Reason != reason)
                    failures.Add($"{where}: expected raise_exception '{reason}', got {error?.Message ?? JsonSerializer.Serialize(rendered)}");
                continue;
            }
            bothFailed++;
            if (error == null) failures.Add($"{where}: Python failed ({pythonError}) but SharpTune rendered {JsonSerializer.Serialize(rendered)}");
        }
        output.WriteLine($"{templates.Count} axolotl templates, {total} renderings: {sameAsJs} equal to @huggingface/jinja, {arbitrated} equal to Python Jinja2 " +
                         $"where the two references differ, {raised} raise_exception with the same message, {bothFailed} refused like Python; {failures.Count} failures");
        foreach (var failure in failures) output.WriteLine(failure.Length > 400 ? failure[..400] + " ..." : failure);
        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(3)));
    }

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
    }
}
