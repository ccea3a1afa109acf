namespace SharpTune.Tokenization.Jinja;

/// <summary>A template that cannot be parsed or rendered; the message names the template line and column.</summary>
public sealed class TemplateException : InvalidInputException
{
    private TemplateException(string message, int line, int column, string reason, bool raisedByTemplate, Exception? inner)
        : base(message)
    {
        Line = line;
        Column = column;
        Reason = reason;
        RaisedByTemplate = raisedByTemplate;
        _ = inner;
    }

    public int Line { get; }
    public int Column { get; }

    /// <summary>The error without the location (for raise_exception: the template author's message).</summary>
    public string Reason { get; }

    /// <summary>True when the template called raise_exception (e.g. roles that do not alternate).</summary>
    public bool RaisedByTemplate { get; }

    internal static TemplateException At(string source, int position, string reason, RaisedException? raised = null)
    {
        position = Math.Clamp(position, 0, source.Length);
        var line = 1;
        var lineStart = 0;
        for (var i = 0; i < position; i++)
            if (source[i] == '\n') { line++; lineStart = i + 1; }
        var column = position - lineStart + 1;
        var what = raised is not null ? "chat template raised an exception" : "chat template error";
        return new TemplateException($"{what} at line {line}, column {column}: {reason}", line, column, reason, raised is not null, raised);
    }
}
