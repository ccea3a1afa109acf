using SharpTune.Tokenization.Jinja;

namespace SharpTune.Tokenization;

/// <summary>
/// A parsed Jinja chat template, rendered as transformers renders chat templates (trim_blocks and lstrip_blocks on).
/// Parsing happens once in the constructor; Render is thread-safe. Errors are <see cref="TemplateException"/>s
/// naming the template line and column.
/// </summary>
public sealed class ChatTemplate
{
    private readonly string _source;
    private readonly ProgramNode _program;
    private readonly TimeProvider _clock;

    public ChatTemplate(string source) : this(source, TimeProvider.System) { }

    /// <summary>With a clock for strftime_now (tests pin the date).</summary>
    public ChatTemplate(string source, TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(source);
        _source = source;
        _clock = clock;
        _program = Parser.Parse(Lexer.Tokenize(source), source);
    }

    public string Source => _source;

    /// <summary>
    /// Renders with the given variables: strings, numbers, booleans, null, lists, dictionaries
    /// (IReadOnlyDictionary&lt;string, object?&gt; or IDictionary), JsonElement, or Func&lt;object?[], object?&gt; callables.
    /// </summary>
    public string Render(IReadOnlyDictionary<string, object?> variables)
    {
        var globals = Globals.Create(_clock);
        var environment = new Jinja.Environment(globals);
        foreach (var (name, value) in variables) environment.Set(name, ValueConverter.From(value));
        return new Interpreter(_source).Run(_program, environment);
    }
}
