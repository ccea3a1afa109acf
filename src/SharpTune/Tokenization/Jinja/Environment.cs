namespace SharpTune.Tokenization.Jinja;

/// <summary>A variable scope; lookups walk up to the parent and yield undefined when nothing defines the name.</summary>
internal sealed class Environment(Environment? parent = null)
{
    private readonly Dictionary<string, Value> _variables = new(StringComparer.Ordinal);

    public Environment? Parent { get; } = parent;

    public void Set(string name, Value value) => _variables[name] = value;

    public Value Lookup(string name)
    {
        for (var env = this; env is not null; env = env.Parent)
            if (env._variables.TryGetValue(name, out var value)) return value;
        return UndefinedValue.Instance;
    }
}

/// <summary>Control flow for {% break %} / {% continue %}.</summary>
internal sealed class BreakSignal : Exception;
internal sealed class ContinueSignal : Exception;

/// <summary>raise_exception(...) from a template: the message is the template author's.</summary>
internal sealed class RaisedException(string message) : Exception(message);
