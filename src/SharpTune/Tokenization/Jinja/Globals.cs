using System.Globalization;
using System.Text;

namespace SharpTune.Tokenization.Jinja;

/// <summary>Names every template sees: true/false/none (and Python spellings), range, namespace, raise_exception, strftime_now.</summary>
internal static class Globals
{
    public static Environment Create(TimeProvider clock)
    {
        var env = new Environment();
        env.Set("true", BoolValue.True);
        env.Set("false", BoolValue.False);
        env.Set("none", NullValue.Instance);
        env.Set("True", BoolValue.True);
        env.Set("False", BoolValue.False);
        env.Set("None", NullValue.Instance);
        env.Set("raise_exception", new FunctionValue((args, _) =>
            throw new RaisedException(args.Count > 0 ? args[0] is StringValue s ? s.V : args[0].ToString() : "")));
        env.Set("range", new FunctionValue((args, _) => Range(args)));
        env.Set("namespace", new FunctionValue((args, _) => Namespace(args)));
        env.Set("dict", new FunctionValue((args, _) =>
        {
            var map = new OrderedMap();
            foreach (var a in args)
                if (a is ObjectValue o) foreach (var (k, v) in o.Map) map.Set(k, v);
            return new ObjectValue(map);
        }));
        env.Set("strftime_now", new FunctionValue((args, _) =>
            new StringValue(Strftime(clock.GetLocalNow().DateTime, args.Count > 0 && args[0] is StringValue f ? f.V : "%Y-%m-%d"))));
        return env;
    }

    private static ArrayValue Range(List<Value> args)
    {
        long Int(int i) => args[i] is IntValue v ? v.V : throw new InvalidOperationException("range() arguments must be integers");
        long start = 0, stop, step = 1;
        if (args.Count == 1) stop = Int(0);
        else if (args.Count >= 2) { start = Int(0); stop = Int(1); if (args.Count > 2) step = Int(2); }
        else throw new InvalidOperationException("range expected at least 1 argument");
        if (step == 0) throw new InvalidOperationException("range() step must not be zero");
        var result = new List<Value>();
        if (step > 0) for (var i = start; i < stop; i += step) result.Add(new IntValue(i));
        else for (var i = start; i > stop; i += step) result.Add(new IntValue(i));
        return new ArrayValue(result);
    }

    private static NamespaceValue Namespace(List<Value> args)
    {
        var positional = args.ToList();
        KwargsValue? kwargs = null;
        if (positional.Count > 0 && positional[^1] is KwargsValue k) { kwargs = k; positional.RemoveAt(positional.Count - 1); }
        if (positional.Count > 1) throw new InvalidOperationException($"namespace expected at most 1 argument, got {positional.Count}");
        var map = new OrderedMap();
        if (positional.Count == 1)
        {
            switch (positional[0])
            {
                case ObjectValue o:
                    foreach (var (key, value) in o.Map) map.Set(key, value);
                    break;
                case ArrayValue a:
                    foreach (var pair in a.Items)
                    {
                        if (pair is not ArrayValue { Items: [StringValue key, var value] }) throw new InvalidOperationException("namespace expected an object or an iterable of [key, value] pairs");
                        map.Set(key.V, value);
                    }
                    break;
                default:
                    throw new InvalidOperationException($"'{positional[0].TypeName}' object is not iterable");
            }
        }
        if (kwargs is not null) foreach (var (key, value) in kwargs.Map) map.Set(key, value);
        return new NamespaceValue(map);
    }

    /// <summary>Python's strftime for the directives chat templates use.</summary>
    internal static string Strftime(DateTime date, string format)
    {
        var sb = new StringBuilder();
        var culture = CultureInfo.InvariantCulture;
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length) { sb.Append(format[i]); continue; }
            var directive = format[++i];
            sb.Append(directive switch
            {
                'Y' => date.Year.ToString(culture),
                'y' => (date.Year % 100).ToString("00", culture),
                'm' => date.Month.ToString("00", culture),
                'd' => date.Day.ToString("00", culture),
                'e' => date.Day.ToString(culture).PadLeft(2),
                'b' => date.ToString("MMM", culture),
                'B' => date.ToString("MMMM", culture),
                'a' => date.ToString("ddd", culture),
                'A' => date.ToString("dddd", culture),
                'H' => date.Hour.ToString("00", culture),
                'I' => (date.Hour % 12 == 0 ? 12 : date.Hour % 12).ToString("00", culture),
                'M' => date.Minute.ToString("00", culture),
                'S' => date.Second.ToString("00", culture),
                'p' => date.Hour < 12 ? "AM" : "PM",
                'j' => date.DayOfYear.ToString("000", culture),
                '%' => "%",
                _ => "%" + directive,
            });
        }
        return sb.ToString();
    }
}
