using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace SharpTune.Tokenization.Jinja;

/// <summary>Runtime values. Printing and JSON follow @huggingface/jinja (the reference transformers.js uses).</summary>
internal abstract class Value
{
    public virtual bool Truthy => true;
    public abstract string TypeName { get; }

    /// <summary>How {{ value }} prints.</summary>
    public abstract override string ToString();

    /// <summary>JavaScript's String(value), used by `+` with strings, `~` and join.</summary>
    public virtual string Primitive => ToString();
}

internal sealed class IntValue(long value) : Value
{
    public long V { get; } = value;
    public override bool Truthy => V != 0;
    public override string TypeName => "IntegerValue";
    public override string ToString() => V.ToString(CultureInfo.InvariantCulture);
}

internal sealed class FloatValue(double value) : Value
{
    public double V { get; } = value;
    public override bool Truthy => V != 0 && !double.IsNaN(V);
    public override string TypeName => "FloatValue";
    public override string ToString()
    {
        if (V == 0 && double.IsNegative(V)) return "-0.0";
        return V % 1 == 0 && double.IsFinite(V) ? V.ToString("F1", CultureInfo.InvariantCulture) : JsNumber(V);
    }
    public override string Primitive => JsNumber(V);

    /// <summary>JavaScript Number.prototype.toString for doubles.</summary>
    internal static string JsNumber(double v)
    {
        if (double.IsNaN(v)) return "NaN";
        if (double.IsPositiveInfinity(v)) return "Infinity";
        if (double.IsNegativeInfinity(v)) return "-Infinity";
        if (v == 0) return "0";
        var abs = Math.Abs(v);
        if (abs >= 1e21 || abs < 1e-6)
        {
            var s = v.ToString("R", CultureInfo.InvariantCulture).Replace("E", "e");
            return s.Contains("e-") ? s : s.Replace("e", "e+").Replace("e++", "e+");
        }
        if (v % 1 == 0) return ((decimal)v).ToString(CultureInfo.InvariantCulture);
        var r = v.ToString("R", CultureInfo.InvariantCulture);
        if (r.Contains('E')) r = decimal.Parse(r, NumberStyles.Float, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture);
        return r;
    }
}

internal sealed class StringValue(string value) : Value
{
    public string V { get; } = value;
    public override bool Truthy => V.Length > 0;
    public override string TypeName => "StringValue";
    public override string ToString() => V;
}

internal sealed class BoolValue : Value
{
    public static readonly BoolValue True = new(true), False = new(false);
    private BoolValue(bool value) => V = value;
    public static BoolValue Of(bool value) => value ? True : False;
    public bool V { get; }
    public override bool Truthy => V;
    public override string TypeName => "BooleanValue";
    public override string ToString() => V ? "true" : "false";
}

internal sealed class NullValue : Value
{
    public static readonly NullValue Instance = new();
    public override bool Truthy => false;
    public override string TypeName => "NullValue";
    public override string ToString() => "null";
    public override string Primitive => "null";
}

internal sealed class UndefinedValue : Value
{
    public static readonly UndefinedValue Instance = new();
    public override bool Truthy => false;
    public override string TypeName => "UndefinedValue";
    public override string ToString() => "";
    public override string Primitive => "undefined";
}

internal class ArrayValue(List<Value> items) : Value
{
    public List<Value> Items { get; } = items;
    public override bool Truthy => Items.Count > 0;
    public override string TypeName => "ArrayValue";
    public override string ToString() => Json.Write(this, new JsonOptions(), 0, convertUndefinedToNull: false);
    public override string Primitive => string.Join(",", Items.Select(i => i is NullValue or UndefinedValue ? "" : i.Primitive));
}

internal sealed class TupleValue(List<Value> items) : ArrayValue(items)
{
    public override string TypeName => "TupleValue";
}

/// <summary>An insertion-ordered string-keyed mapping (a dict, or the keyword arguments of a call).</summary>
internal class ObjectValue(OrderedMap map) : Value
{
    public OrderedMap Map { get; } = map;
    public override bool Truthy => Map.Count > 0;
    public override string TypeName => "ObjectValue";
    public override string ToString() => Json.Write(this, new JsonOptions(), 0, convertUndefinedToNull: false);
    public override string Primitive => "[object Map]";
}

internal sealed class KwargsValue(OrderedMap map) : ObjectValue(map)
{
    public override string TypeName => "KeywordArgumentsValue";
}

internal sealed class NamespaceValue(OrderedMap map) : Value
{
    public OrderedMap Map { get; } = map;
    public override string TypeName => "NamespaceValue";
    public override string ToString() => Json.Write(this, new JsonOptions(), 0, convertUndefinedToNull: false);
}

internal delegate Value NativeFunction(List<Value> args, Environment scope);

internal sealed class FunctionValue(NativeFunction function) : Value
{
    public NativeFunction Function { get; } = function;
    public override string TypeName => "FunctionValue";
    public override string ToString() => "[function]";
}

internal sealed class OrderedMap : IEnumerable<KeyValuePair<string, Value>>
{
    private readonly Dictionary<string, Value> _values = new(StringComparer.Ordinal);
    private readonly List<string> _keys = [];

    public int Count => _keys.Count;
    public IReadOnlyList<string> Keys => _keys;
    public bool ContainsKey(string key) => _values.ContainsKey(key);
    public Value? Get(string key) => _values.GetValueOrDefault(key);

    public void Set(string key, Value value)
    {
        if (!_values.ContainsKey(key)) _keys.Add(key);
        _values[key] = value;
    }

    public bool Remove(string key)
    {
        if (!_values.Remove(key)) return false;
        _keys.Remove(key);
        return true;
    }

    public IEnumerator<KeyValuePair<string, Value>> GetEnumerator()
    {
        foreach (var key in _keys) yield return new KeyValuePair<string, Value>(key, _values[key]);
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

internal sealed record JsonOptions(int? Indent = null, bool EnsureAscii = false, (string Item, string Key)? Separators = null, bool SortKeys = false);

/// <summary>The tojson filter and the printing of lists/dicts: Python json.dumps layout (", " and ": "), no escaping of non-ASCII.</summary>
internal static class Json
{
    public static string Write(Value input, JsonOptions options, int depth, bool convertUndefinedToNull = true)
    {
        var (itemSeparator, keySeparator) = options.Separators ?? (options.Indent is > 0 ? (",", ": ") : (", ", ": "));
        switch (input)
        {
            case NullValue: return "null";
            case UndefinedValue: return convertUndefinedToNull ? "null" : "undefined";
            case IntValue i: return i.V.ToString(CultureInfo.InvariantCulture);
            case FloatValue f: return double.IsFinite(f.V) ? FloatValue.JsNumber(f.V) : "null";
            case BoolValue b: return b.V ? "true" : "false";
            case StringValue s: return Quote(s.V, options.EnsureAscii);
            case ArrayValue or ObjectValue or NamespaceValue:
            {
                var indent = options.Indent is > 0 ? new string(' ', options.Indent.Value) : "";
                var basePadding = "\n" + string.Concat(Enumerable.Repeat(indent, depth));
                var childPadding = basePadding + indent;
                var pretty = options.Indent is > 0;
                if (input is ArrayValue array)
                {
                    var core = array.Items.Select(x => Write(x, options, depth + 1, convertUndefinedToNull)).ToList();
                    return pretty && core.Count > 0
                        ? $"[{childPadding}{string.Join(itemSeparator + childPadding, core)}{basePadding}]"
                        : $"[{string.Join(itemSeparator, core)}]";
                }
                var map = input is ObjectValue o ? o.Map : ((NamespaceValue)input).Map;
                IEnumerable<KeyValuePair<string, Value>> entries = map;
                if (options.SortKeys) entries = entries.OrderBy(e => e.Key, StringComparer.Ordinal);
                var parts = entries.Select(e =>
                {
                    var v = $"{Quote(e.Key, options.EnsureAscii)}{keySeparator}{Write(e.Value, options, depth + 1, convertUndefinedToNull)}";
                    return pretty ? childPadding + v : v;
                }).ToList();
                return pretty && parts.Count > 0 ? $"{{{string.Join(itemSeparator, parts)}{basePadding}}}" : $"{{{string.Join(itemSeparator, parts)}}}";
            }
            default:
                throw new InvalidOperationException($"Cannot convert to JSON: {input.TypeName}");
        }
    }

    /// <summary>JSON.stringify for a string (optionally with non-ASCII as \uXXXX, like Python's ensure_ascii).</summary>
    public static string Quote(string s, bool ensureAscii)
    {
        var sb = new StringBuilder(s.Length + 2);
        sb.Append('"');
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    var loneSurrogate = char.IsSurrogate(c) && !(char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
                        && !(char.IsLowSurrogate(c) && i > 0 && char.IsHighSurrogate(s[i - 1]));
                    if (c < 0x20 || loneSurrogate || (ensureAscii && c >= 0x7f)) sb.Append("\\u").Append(((int)c).ToString("x4"));
                    else sb.Append(c);
                    break;
            }
        }
        return sb.Append('"').ToString();
    }
}

/// <summary>Turns .NET values (dictionaries, lists, JsonElement, primitives, delegates) into template values.</summary>
internal static class ValueConverter
{
    public static Value From(object? input) => input switch
    {
        null => NullValue.Instance,
        Value v => v,
        string s => new StringValue(s),
        bool b => BoolValue.Of(b),
        int or long or short or byte or sbyte or uint or ushort => new IntValue(Convert.ToInt64(input, CultureInfo.InvariantCulture)),
        ulong u => new IntValue((long)u),
        double or float or decimal => FromDouble(Convert.ToDouble(input, CultureInfo.InvariantCulture)),
        JsonElement e => FromJson(e),
        System.Text.Json.Nodes.JsonNode n => FromJson(JsonSerializer.SerializeToElement(n)),
        Func<object?[], object?> f => new FunctionValue((args, _) => From(f(args.Select(ToClr).ToArray()))),
        IEnumerable<KeyValuePair<string, object?>> dict => FromPairs(dict),
        IDictionary dict => FromDictionary(dict),
        IEnumerable list => new ArrayValue(list.Cast<object?>().Select(From).ToList()),
        _ => new StringValue(input.ToString() ?? ""),
    };

    // JavaScript has one number type; the reference treats integral numbers as integers.
    private static Value FromDouble(double d) => d % 1 == 0 && Math.Abs(d) < 9e15 ? new IntValue((long)d) : new FloatValue(d);

    private static Value FromPairs(IEnumerable<KeyValuePair<string, object?>> pairs)
    {
        var map = new OrderedMap();
        foreach (var (key, value) in pairs) map.Set(key, From(value));
        return new ObjectValue(map);
    }

    private static Value FromDictionary(IDictionary dict)
    {
        var map = new OrderedMap();
        foreach (DictionaryEntry entry in dict) map.Set(entry.Key.ToString()!, From(entry.Value));
        return new ObjectValue(map);
    }

    public static Value FromJson(JsonElement e)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.String: return new StringValue(e.GetString()!);
            case JsonValueKind.True: return BoolValue.True;
            case JsonValueKind.False: return BoolValue.False;
            case JsonValueKind.Null: return NullValue.Instance;
            case JsonValueKind.Undefined: return UndefinedValue.Instance;
            case JsonValueKind.Number: return e.TryGetInt64(out var l) ? new IntValue(l) : FromDouble(e.GetDouble());
            case JsonValueKind.Array: return new ArrayValue(e.EnumerateArray().Select(FromJson).ToList());
            default:
                var map = new OrderedMap();
                foreach (var p in e.EnumerateObject()) map.Set(p.Name, FromJson(p.Value));
                return new ObjectValue(map);
        }
    }

    public static object? ToClr(Value v) => v switch
    {
        StringValue s => s.V,
        IntValue i => i.V,
        FloatValue f => f.V,
        BoolValue b => b.V,
        ArrayValue a => a.Items.Select(ToClr).ToList(),
        ObjectValue o => o.Map.ToDictionary(p => p.Key, p => ToClr(p.Value)),
        _ => null,
    };
}
