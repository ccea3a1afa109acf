using System.Globalization;
using System.Text.RegularExpressions;

namespace SharpTune.Tokenization.Jinja;

/// <summary>Methods and properties reachable with a dot: str.strip(), dict.items(), list.append() ...</summary>
internal static partial class Builtins
{
    private static FunctionValue Fn(Func<List<Value>, Value> body) => new((args, _) => body(args));

    private static (List<Value> Positional, OrderedMap Keyword) SplitKwargs(List<Value> args)
    {
        if (args.Count > 0 && args[^1] is KwargsValue kw) return (args.Take(args.Count - 1).ToList(), kw.Map);
        return (args, new OrderedMap());
    }

    public static Value? ForString(StringValue s, string name)
    {
        var v = s.V;
        return name switch
        {
            "upper" => Fn(_ => new StringValue(v.ToUpperInvariant())),
            "lower" => Fn(_ => new StringValue(v.ToLowerInvariant())),
            "strip" => Fn(a => new StringValue(Strip(v, a, left: true, right: true))),
            "lstrip" => Fn(a => new StringValue(Strip(v, a, left: true, right: false))),
            "rstrip" => Fn(a => new StringValue(Strip(v, a, left: false, right: true))),
            "title" => Fn(_ => new StringValue(TitleCase(v))),
            "capitalize" => Fn(_ => new StringValue(v.Length == 0 ? v : char.ToUpperInvariant(v[0]) + v[1..])),
            "length" => new IntValue(v.Length),
            "startswith" => Fn(a => BoolValue.Of(Affix(v, a, "startswith", (x, p) => x.StartsWith(p, StringComparison.Ordinal)))),
            "endswith" => Fn(a => BoolValue.Of(Affix(v, a, "endswith", (x, p) => x.EndsWith(p, StringComparison.Ordinal)))),
            "split" => Fn(a => Split(v, a)),
            "replace" => Fn(a => Replace(v, a)),
            "join" => Fn(a => new StringValue(string.Join(v, Iterate(a.ElementAtOrDefault(0) ?? UndefinedValue.Instance).Select(x => x.Primitive)))),
            "find" => Fn(a => new IntValue(v.IndexOf(Str(a, 0, "find"), StringComparison.Ordinal))),
            "count" => Fn(a => new IntValue(CountOccurrences(v, Str(a, 0, "count")))),
            "isdigit" => Fn(_ => BoolValue.Of(v.Length > 0 && v.All(char.IsDigit))),
            "isalpha" => Fn(_ => BoolValue.Of(v.Length > 0 && v.All(char.IsLetter))),
            "isalnum" => Fn(_ => BoolValue.Of(v.Length > 0 && v.All(char.IsLetterOrDigit))),
            "isspace" => Fn(_ => BoolValue.Of(v.Length > 0 && v.All(char.IsWhiteSpace))),
            "islower" => Fn(_ => BoolValue.Of(v.Any(char.IsLetter) && v == v.ToLowerInvariant())),
            "isupper" => Fn(_ => BoolValue.Of(v.Any(char.IsLetter) && v == v.ToUpperInvariant())),
            "removeprefix" => Fn(a => new StringValue(v.StartsWith(Str(a, 0, name), StringComparison.Ordinal) ? v[Str(a, 0, name).Length..] : v)),
            "removesuffix" => Fn(a => new StringValue(v.EndsWith(Str(a, 0, name), StringComparison.Ordinal) ? v[..^Str(a, 0, name).Length] : v)),
            "splitlines" => Fn(_ => new ArrayValue(v.Split('\n').Select(l => (Value)new StringValue(l.TrimEnd('\r'))).ToList())),
            _ => null,
        };
    }

    public static Value? ForArray(ArrayValue array, string name) => name switch
    {
        "length" => new IntValue(array.Items.Count),
        "append" => Fn(a => { array.Items.Add(a.ElementAtOrDefault(0) ?? UndefinedValue.Instance); return NullValue.Instance; }),
        "extend" => Fn(a => { array.Items.AddRange(Iterate(a.ElementAtOrDefault(0) ?? UndefinedValue.Instance)); return NullValue.Instance; }),
        "insert" => Fn(a =>
        {
            var index = (int)((a.ElementAtOrDefault(0) as IntValue)?.V ?? 0);
            array.Items.Insert(Math.Clamp(index < 0 ? array.Items.Count + index : index, 0, array.Items.Count), a.ElementAtOrDefault(1) ?? NullValue.Instance);
            return NullValue.Instance;
        }),
        "pop" => Fn(a =>
        {
            if (array.Items.Count == 0) throw new InvalidOperationException("pop from empty list");
            var index = (int)((a.ElementAtOrDefault(0) as IntValue)?.V ?? -1);
            if (index < 0) index += array.Items.Count;
            var item = array.Items[index];
            array.Items.RemoveAt(index);
            return item;
        }),
        "index" => Fn(a => new IntValue(array.Items.FindIndex(x => Compare.StrictEquals(x, a.ElementAtOrDefault(0) ?? UndefinedValue.Instance)))),
        "count" => Fn(a => new IntValue(array.Items.Count(x => Compare.StrictEquals(x, a.ElementAtOrDefault(0) ?? UndefinedValue.Instance)))),
        _ => null,
    };

    public static Value? ForObject(ObjectValue obj, string name) => name switch
    {
        "get" => Fn(a =>
        {
            if (a.ElementAtOrDefault(0) is not StringValue key) throw new InvalidOperationException($"Object key must be a string: got {a.ElementAtOrDefault(0)?.TypeName}");
            return obj.Map.Get(key.V) ?? a.ElementAtOrDefault(1) ?? NullValue.Instance;
        }),
        "items" => Fn(_ => Items(obj)),
        "keys" => Fn(_ => new ArrayValue(obj.Map.Keys.Select(k => (Value)new StringValue(k)).ToList())),
        "values" => Fn(_ => new ArrayValue(obj.Map.Select(p => p.Value).ToList())),
        "dictsort" => Fn(a => DictSort(obj, a)),
        _ => null,
    };

    public static ArrayValue Items(ObjectValue obj) =>
        new(obj.Map.Select(p => (Value)new ArrayValue([new StringValue(p.Key), p.Value])).ToList());

    public static ArrayValue DictSort(ObjectValue obj, List<Value> args)
    {
        var (positional, keyword) = SplitKwargs(args);
        var caseSensitive = (positional.ElementAtOrDefault(0) ?? keyword.Get("case_sensitive")) is BoolValue { V: true };
        var by = (positional.ElementAtOrDefault(1) ?? keyword.Get("by")) is StringValue s ? s.V : "key";
        if (by is not ("key" or "value")) throw new InvalidOperationException("by must be either 'key' or 'value'");
        var reverse = (positional.ElementAtOrDefault(2) ?? keyword.Get("reverse")) is BoolValue { V: true };
        var index = by == "key" ? 0 : 1;
        var items = Items(obj).Items.Cast<ArrayValue>().ToList();
        var sorted = items.OrderBy(x => x, Comparer<ArrayValue>.Create((x, y) =>
        {
            var r = Compare.Order(x.Items[index], y.Items[index], caseSensitive);
            return reverse ? -r : r;
        })).Cast<Value>().ToList();
        return new ArrayValue(sorted);
    }

    public static IEnumerable<Value> Iterate(Value v) => v switch
    {
        ArrayValue a => a.Items,
        StringValue s => Interpreter.CodePoints(s.V).Select(c => (Value)new StringValue(c)),
        ObjectValue o => o.Map.Keys.Select(k => (Value)new StringValue(k)),
        _ => throw new InvalidOperationException($"'{v.TypeName}' object is not iterable"),
    };

    private static string Str(List<Value> args, int index, string method) =>
        args.ElementAtOrDefault(index) is StringValue s ? s.V : throw new InvalidOperationException($"{method}() argument must be a string");

    private static int CountOccurrences(string text, string part)
    {
        if (part.Length == 0) return text.Length + 1;
        var count = 0;
        for (var i = text.IndexOf(part, StringComparison.Ordinal); i >= 0; i = text.IndexOf(part, i + part.Length, StringComparison.Ordinal)) count++;
        return count;
    }

    /// <summary>Python str.strip([chars]): whitespace without an argument, else any of the given chars.</summary>
    internal static string Strip(string v, List<Value> args, bool left, bool right)
    {
        var chars = args.ElementAtOrDefault(0) is StringValue s ? s.V : null;
        bool Drop(char c) => chars is null ? Lexer.IsJsWhitespace(c) : chars.Contains(c);
        var start = 0;
        var end = v.Length;
        if (left) while (start < end && Drop(v[start])) start++;
        if (right) while (end > start && Drop(v[end - 1])) end--;
        return v[start..end];
    }

    private static bool Affix(string v, List<Value> args, string method, Func<string, string, bool> test)
    {
        if (args.Count == 0) throw new InvalidOperationException($"{method}() requires at least one argument");
        return args[0] switch
        {
            StringValue p => test(v, p.V),
            ArrayValue list => list.Items.Any(item => item is StringValue p ? test(v, p.V) : throw new InvalidOperationException($"{method}() tuple elements must be strings")),
            _ => throw new InvalidOperationException($"{method}() argument must be a string or tuple of strings"),
        };
    }

    private static ArrayValue Split(string v, List<Value> args)
    {
        var (positional, keyword) = SplitKwargs(args);
        var sep = positional.ElementAtOrDefault(0) ?? keyword.Get("sep") ?? NullValue.Instance;
        var maxSplit = (positional.ElementAtOrDefault(1) ?? keyword.Get("maxsplit")) is IntValue m ? m.V : -1;
        var result = new List<string>();
        if (sep is NullValue)
        {
            var text = v.TrimStart();
            foreach (Match match in NonSpace().Matches(text))
            {
                if (maxSplit != -1 && result.Count >= maxSplit) { result.Add(text[match.Index..]); break; }
                result.Add(match.Value);
            }
        }
        else if (sep is StringValue separator)
        {
            if (separator.V.Length == 0) throw new InvalidOperationException("empty separator");
            var parts = v.Split(separator.V);
            if (maxSplit != -1 && parts.Length > maxSplit)
            {
                result.AddRange(parts.Take((int)maxSplit));
                result.Add(string.Join(separator.V, parts.Skip((int)maxSplit)));
            }
            else result.AddRange(parts);
        }
        else throw new InvalidOperationException("sep argument must be a string or null");
        return new ArrayValue(result.Select(p => (Value)new StringValue(p)).ToList());
    }

    internal static StringValue Replace(string v, List<Value> args)
    {
        var (positional, keyword) = SplitKwargs(args);
        if (positional.Count < 2) throw new InvalidOperationException("replace() requires at least two arguments");
        if (positional[0] is not StringValue oldValue || positional[1] is not StringValue newValue) throw new InvalidOperationException("replace() arguments must be strings");
        var countValue = positional.ElementAtOrDefault(2) ?? keyword.Get("count") ?? NullValue.Instance;
        if (countValue is not (IntValue or NullValue)) throw new InvalidOperationException("replace() count argument must be a number or null");
        var remaining = countValue is IntValue { V: >= 0 } c ? c.V : long.MaxValue;
        if (remaining == 0) return new StringValue(v);
        if (oldValue.V.Length == 0)
        {
            // Python inserts the replacement between every code point (and at both ends).
            var points = Interpreter.CodePoints(v);
            var sb = new System.Text.StringBuilder();
            for (var i = 0; i <= points.Count; i++)
            {
                if (remaining-- > 0) sb.Append(newValue.V);
                if (i < points.Count) sb.Append(points[i]);
            }
            return new StringValue(sb.ToString());
        }
        var output = new System.Text.StringBuilder();
        var last = 0;
        for (var i = v.IndexOf(oldValue.V, StringComparison.Ordinal); i >= 0 && remaining > 0; i = v.IndexOf(oldValue.V, last, StringComparison.Ordinal))
        {
            output.Append(v, last, i - last).Append(newValue.V);
            last = i + oldValue.V.Length;
            remaining--;
        }
        output.Append(v, last, v.Length - last);
        return new StringValue(output.ToString());
    }

    /// <summary>The reference's title(): upper-case every char that starts an ASCII word.</summary>
    internal static string TitleCase(string v) => WordStart().Replace(v, m => m.Value.ToUpperInvariant());

    [GeneratedRegex(@"\S+")]
    private static partial Regex NonSpace();

    [GeneratedRegex(@"\b[A-Za-z0-9_]", RegexOptions.ECMAScript)]
    private static partial Regex WordStart();
}
