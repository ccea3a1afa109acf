using System.Globalization;

namespace SharpTune.Tokenization.Jinja;

internal sealed partial class Interpreter
{
    private Value ApplyFilter(Value operand, Node filterNode, Environment environment)
    {
        string name;
        List<Value> args;
        OrderedMap kwargs;
        switch (filterNode)
        {
            case IdentifierNode id:
                name = id.Name; args = []; kwargs = new OrderedMap();
                break;
            case CallNode { Callee: IdentifierNode callee } call:
                name = callee.Name;
                (args, kwargs) = EvaluateArguments(call.Args, environment);
                break;
            default:
                throw new InvalidOperationException("Unknown filter expression");
        }
        return Filter(name, operand, args, kwargs, environment);
    }

    private Value Filter(string name, Value operand, List<Value> args, OrderedMap kwargs, Environment environment)
    {
        Value? Arg(int index, string key) => args.ElementAtOrDefault(index) ?? kwargs.Get(key);

        switch (name)
        {
            case "safe":
                return operand;
            case "tojson":
            {
                var indent = Arg(0, "indent");
                if (indent is not (null or IntValue or NullValue)) throw new InvalidOperationException("If set, indent must be a number");
                (string, string)? separators = null;
                if (kwargs.Get("separators") is ArrayValue { Items: [StringValue item, StringValue key] }) separators = (item.V, key.V);
                return new StringValue(Json.Write(operand, new JsonOptions(
                    indent is IntValue i ? (int)i.V : null, kwargs.Get("ensure_ascii") is BoolValue { V: true }, separators, kwargs.Get("sort_keys") is BoolValue { V: true }), 0));
            }
            case "default":
            case "d":
            {
                var fallback = Arg(0, "default_value") ?? new StringValue("");
                var boolean = Arg(1, "boolean") is BoolValue { V: true };
                return operand is UndefinedValue || (boolean && !operand.Truthy) ? fallback : operand;
            }
            case "join":
            {
                var separator = Arg(0, "d") ?? Arg(0, "separator") ?? new StringValue("");
                if (separator is not StringValue sep) throw new InvalidOperationException("separator must be a string");
                IEnumerable<Value> items = operand switch
                {
                    StringValue s => CodePoints(s.V).Select(c => (Value)new StringValue(c)),
                    ArrayValue a => a.Items,
                    _ => throw new InvalidOperationException($"Cannot apply filter \"join\" to type: {operand.TypeName}"),
                };
                if (kwargs.Get("attribute") is StringValue attribute) items = items.Select(x => AttributeOf(x, attribute.V));
                return new StringValue(string.Join(sep.V, items.Select(x => x is NullValue or UndefinedValue ? "" : x.Primitive)));
            }
            case "int":
            case "float":
            {
                var isInt = name == "int";
                var fallback = Arg(0, "default") ?? (isInt ? new IntValue(0) : new FloatValue(0));
                return operand switch
                {
                    StringValue s => isInt
                        ? (JsParseInt(s.V) is { } n ? new IntValue(n) : fallback)
                        : (JsParseFloat(s.V) is { } d ? new FloatValue(d) : fallback),
                    IntValue i => isInt ? i : new FloatValue(i.V),
                    FloatValue f => isInt ? new IntValue((long)Math.Floor(f.V)) : f,
                    BoolValue b => isInt ? new IntValue(b.V ? 1 : 0) : new FloatValue(b.V ? 1 : 0),
                    _ => throw new InvalidOperationException($"Cannot apply filter \"{name}\" to type: {operand.TypeName}"),
                };
            }
            case "length":
            case "count":
                return operand switch
                {
                    ArrayValue a => new IntValue(a.Items.Count),
                    StringValue s => new IntValue(s.V.Length),
                    ObjectValue o => new IntValue(o.Map.Count),
                    _ => throw new InvalidOperationException($"Cannot apply filter \"{name}\" to type: {operand.TypeName}"),
                };
            case "string":
                return operand switch
                {
                    StringValue s => s,
                    NullValue => new StringValue("None"),
                    _ => new StringValue(operand.ToString()),
                };
            case "list":
                return operand is ArrayValue ? operand : new ArrayValue(Builtins.Iterate(operand).ToList());
            case "first":
            {
                var items = Builtins.Iterate(operand).ToList();
                return items.Count > 0 ? items[0] : UndefinedValue.Instance;
            }
            case "last":
            {
                var items = Builtins.Iterate(operand).ToList();
                return items.Count > 0 ? items[^1] : UndefinedValue.Instance;
            }
            case "reverse":
                return operand is StringValue rs
                    ? new StringValue(string.Concat(Enumerable.Reverse(CodePoints(rs.V))))
                    : new ArrayValue(Builtins.Iterate(operand).Reverse().ToList());
            case "sort":
            {
                var reverse = Arg(0, "reverse") is BoolValue { V: true };
                var caseSensitive = Arg(1, "case_sensitive") is BoolValue { V: true };
                var attribute = Arg(2, "attribute");
                Value Key(Value item) => attribute switch
                {
                    StringValue s => AttributeOf(item, s.V),
                    IntValue i => AttributeOf(item, i.V.ToString(CultureInfo.InvariantCulture)),
                    _ => item,
                };
                var items = Builtins.Iterate(operand).ToList();
                // A stable sort, as JavaScript's Array.prototype.sort and Python's sorted are.
                var sorted = items.OrderBy(x => x, Comparer<Value>.Create((a, b) =>
                {
                    var r = Compare.Order(Key(a), Key(b), caseSensitive);
                    return reverse ? -r : r;
                })).ToList();
                return new ArrayValue(sorted);
            }
            case "unique":
            {
                var output = new List<Value>();
                foreach (var item in Builtins.Iterate(operand))
                    if (!output.Any(x => Compare.StrictEquals(x, item))) output.Add(item);
                return new ArrayValue(output);
            }
            case "upper":
            case "lower":
            case "title":
            case "capitalize":
                // Python Jinja2 renders an undefined value as '' in string filters (command_a's `safety_mode|upper`).
                if (operand is UndefinedValue) operand = new StringValue("");
                return operand is StringValue us
                    ? ((FunctionValue)Builtins.ForString(us, name)!).Function([], environment)
                    : throw new InvalidOperationException($"Cannot apply filter \"{name}\" to type: {operand.TypeName}");
            case "trim":
                if (operand is UndefinedValue) operand = new StringValue("");
                return operand is StringValue ts
                    ? new StringValue(Builtins.Strip(ts.V, args, left: true, right: true))
                    : throw new InvalidOperationException($"Cannot apply filter \"trim\" to type: {operand.TypeName}");
            case "indent":
            {
                if (operand is not StringValue s) throw new InvalidOperationException($"Cannot apply filter \"indent\" to type: {operand.TypeName}");
                var width = Arg(0, "width");
                var indent = width switch
                {
                    null => "    ",
                    IntValue w => new string(' ', (int)w.V),
                    StringValue w => w.V,
                    _ => throw new InvalidOperationException("width must be a number"),
                };
                var first = Arg(1, "first")?.Truthy ?? false;
                var blank = Arg(2, "blank")?.Truthy ?? false;
                var lines = s.V.Split('\n');
                return new StringValue(string.Join("\n", lines.Select((x, i) => (!first && i == 0) || (!blank && x.Length == 0) ? x : indent + x)));
            }
            case "replace":
                return operand is StringValue rps
                    ? Builtins.Replace(rps.V, kwargs.Count > 0 ? [.. args, new KwargsValue(kwargs)] : args)
                    : throw new InvalidOperationException($"Cannot apply filter \"replace\" to type: {operand.TypeName}");
            case "wordcount":
                return operand is StringValue wc ? new IntValue(wc.V.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length)
                    : throw new InvalidOperationException($"Cannot apply filter \"wordcount\" to type: {operand.TypeName}");
            case "items":
                return operand is ObjectValue io ? Builtins.Items(io) : throw new InvalidOperationException($"Cannot apply filter \"items\" to type: {operand.TypeName}");
            case "dictsort":
                return operand is ObjectValue dso
                    ? Builtins.DictSort(dso, kwargs.Count > 0 ? [.. args, new KwargsValue(kwargs)] : args)
                    : throw new InvalidOperationException($"Cannot apply filter \"dictsort\" to type: {operand.TypeName}");
            case "abs":
                return operand switch
                {
                    IntValue i => new IntValue(Math.Abs(i.V)),
                    FloatValue f => new FloatValue(Math.Abs(f.V)),
                    _ => throw new InvalidOperationException($"Cannot apply filter \"abs\" to type: {operand.TypeName}"),
                };
            case "round":
            {
                if (!Compare.IsNumericLike(operand)) throw new InvalidOperationException($"Cannot apply filter \"round\" to type: {operand.TypeName}");
                var precision = Arg(0, "precision") is IntValue p ? (int)p.V : 0;
                var method = Arg(1, "method") is StringValue m ? m.V : "common";
                var scale = Math.Pow(10, precision);
                var x = Compare.Number(operand) * scale;
                var rounded = method switch { "floor" => Math.Floor(x), "ceil" => Math.Ceiling(x), _ => Math.Round(x, MidpointRounding.ToEven) }; // Python round(): halves to even
                return new FloatValue(rounded / scale);
            }
            case "min":
            case "max":
            {
                var items = Builtins.Iterate(operand).ToList();
                if (items.Count == 0) return UndefinedValue.Instance;
                var caseSensitive = Arg(0, "case_sensitive") is BoolValue { V: true };
                var best = items[0];
                foreach (var item in items.Skip(1))
                {
                    var r = Compare.Order(item, best, caseSensitive);
                    if (name == "min" ? r < 0 : r > 0) best = item;
                }
                return best;
            }
            case "sum":
            {
                Value total = Arg(1, "start") ?? new IntValue(0);
                var attribute = Arg(0, "attribute") as StringValue;
                foreach (var item in Builtins.Iterate(operand))
                {
                    var v = attribute is null ? item : AttributeOf(item, attribute.V);
                    total = total is IntValue a && v is IntValue b ? new IntValue(a.V + b.V) : new FloatValue(Compare.Number(total) + Compare.Number(v));
                }
                return total;
            }
            case "selectattr":
            case "rejectattr":
            case "select":
            case "reject":
            {
                var select = name.StartsWith("select", StringComparison.Ordinal);
                var byAttribute = name.EndsWith("attr", StringComparison.Ordinal);
                var rest = args.ToList();
                string? attribute = null;
                if (byAttribute)
                {
                    if (rest.Count == 0 || rest[0] is not StringValue attr) throw new InvalidOperationException($"`{name}` needs an attribute name");
                    attribute = attr.V;
                    rest.RemoveAt(0);
                }
                var testName = rest.Count > 0 && rest[0] is StringValue t ? t.V : null;
                var testArgs = rest.Skip(testName is null ? 0 : 1).ToList();
                var output = new List<Value>();
                foreach (var item in Builtins.Iterate(operand))
                {
                    bool passed;
                    if (attribute is not null)
                    {
                        // Python Jinja2 looks the attribute up on anything (a string's characters have none: undefined),
                        // so llava's `content | selectattr('type', ...)` over a plain-text message selects nothing.
                        var value = item is ObjectValue or NamespaceValue ? AttributeOf(item, attribute) : UndefinedValue.Instance;
                        // The reference treats a missing attribute as failing the test.
                        passed = value is not UndefinedValue && (testName is null ? value.Truthy : Tests.Run(testName, value, testArgs));
                    }
                    else passed = testName is null ? item.Truthy : Tests.Run(testName, item, testArgs);
                    if (passed == select) output.Add(item);
                }
                return new ArrayValue(output);
            }
            case "map":
            {
                var items = Builtins.Iterate(operand).ToList();
                if (kwargs.Get("attribute") is { } attr)
                {
                    if (attr is not (StringValue or IntValue)) throw new InvalidOperationException("attribute must be a string");
                    var path = attr is StringValue sa ? sa.V : ((IntValue)attr).V.ToString(CultureInfo.InvariantCulture);
                    var fallback = kwargs.Get("default");
                    return new ArrayValue(items.Select(item =>
                    {
                        var value = AttributeOf(item, path);
                        return value is UndefinedValue ? fallback ?? UndefinedValue.Instance : value;
                    }).ToList());
                }
                if (args.Count == 0 || args[0] is not StringValue filterName) throw new InvalidOperationException("map needs attribute= or a filter name");
                return new ArrayValue(items.Select(item => Filter(filterName.V, item, args.Skip(1).ToList(), kwargs, environment)).ToList());
            }
            case "batch":
            {
                var size = Arg(0, "linecount") is IntValue n && n.V > 0 ? (int)n.V : throw new InvalidOperationException("batch needs a positive size");
                var fill = Arg(1, "fill_with");
                var batches = Builtins.Iterate(operand).Chunk(size).Select(chunk =>
                {
                    var list = chunk.ToList();
                    while (fill is not null && list.Count < size) list.Add(fill);
                    return (Value)new ArrayValue(list);
                }).ToList();
                return new ArrayValue(batches);
            }
            case "bool":
                return BoolValue.Of(operand.Truthy);
            default:
                if (operand is ObjectValue obj && Builtins.ForObject(obj, name) is FunctionValue objectMethod)
                    return objectMethod.Function(kwargs.Count > 0 ? [.. args, new KwargsValue(kwargs)] : args, environment);
                throw new InvalidOperationException($"Unknown {operand.TypeName} filter: {name}");
        }
    }

    /// <summary>Dotted attribute path lookup (`a.b.0`) used by map/sort/selectattr.</summary>
    private static Value AttributeOf(Value item, string path)
    {
        var value = item;
        foreach (var part in path.Split('.'))
        {
            value = value switch
            {
                ObjectValue o => o.Map.Get(part) ?? UndefinedValue.Instance,
                NamespaceValue n => n.Map.Get(part) ?? UndefinedValue.Instance,
                ArrayValue a when int.TryParse(part, out var i) && i >= 0 && i < a.Items.Count => a.Items[i],
                _ => UndefinedValue.Instance,
            };
            if (value is UndefinedValue) return value;
        }
        return value;
    }

    /// <summary>JavaScript parseInt(s, 10): optional sign and leading digits after whitespace.</summary>
    private static long? JsParseInt(string s)
    {
        var t = s.TrimStart();
        var i = 0;
        if (i < t.Length && t[i] is '+' or '-') i++;
        var digitsStart = i;
        while (i < t.Length && char.IsAsciiDigit(t[i])) i++;
        return i > digitsStart && long.TryParse(t[..i], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v : null;
    }

    /// <summary>JavaScript parseFloat: the longest numeric prefix.</summary>
    private static double? JsParseFloat(string s)
    {
        var t = s.TrimStart();
        for (var end = t.Length; end > 0; end--)
            if (double.TryParse(t[..end], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && !t[..end].EndsWith(' ')) return v;
        return null;
    }
}
