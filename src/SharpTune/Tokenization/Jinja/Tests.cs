namespace SharpTune.Tokenization.Jinja;

/// <summary>`x is name(args)` tests.</summary>
internal static class Tests
{
    public static bool Run(string name, Value operand, List<Value> args)
    {
        Value Arg() => args.Count > 0 ? args[0] : UndefinedValue.Instance;
        return name switch
        {
            "boolean" => operand is BoolValue,
            "callable" => operand is FunctionValue,
            "odd" => operand is IntValue o ? o.V % 2 != 0 : throw new InvalidOperationException($"cannot odd on {operand.TypeName}"),
            "even" => operand is IntValue e ? e.V % 2 == 0 : throw new InvalidOperationException($"cannot even on {operand.TypeName}"),
            "false" => operand is BoolValue { V: false },
            "true" => operand is BoolValue { V: true },
            "none" => operand is NullValue,
            "string" => operand is StringValue,
            "number" => operand is IntValue or FloatValue,
            "integer" => operand is IntValue,
            "float" => operand is FloatValue,
            "iterable" => operand is ArrayValue or StringValue,
            "mapping" => operand is ObjectValue,
            "sequence" => operand is ArrayValue or ObjectValue or StringValue,
            "lower" => operand is StringValue l && l.V == l.V.ToLowerInvariant(),
            "upper" => operand is StringValue u && u.V == u.V.ToUpperInvariant(),
            "defined" => operand is not UndefinedValue,
            "undefined" => operand is UndefinedValue,
            "equalto" or "eq" or "==" or "sameas" => Compare.StrictEquals(operand, Arg()),
            "ne" or "!=" => !Compare.StrictEquals(operand, Arg()),
            "lt" or "lessthan" or "<" => Compare.Order(operand, Arg(), true) < 0,
            "le" or "<=" => Compare.Order(operand, Arg(), true) <= 0,
            "gt" or "greaterthan" or ">" => Compare.Order(operand, Arg(), true) > 0,
            "ge" or ">=" => Compare.Order(operand, Arg(), true) >= 0,
            "divisibleby" => operand is IntValue d && Arg() is IntValue n && n.V != 0 && d.V % n.V == 0,
            "in" => Arg() switch
            {
                ArrayValue a => a.Items.Any(x => Compare.StrictEquals(x, operand)),
                StringValue s => operand is StringValue p && s.V.Contains(p.V, StringComparison.Ordinal),
                ObjectValue m => operand is StringValue k && m.Map.ContainsKey(k.V),
                _ => false,
            },
            _ => throw new InvalidOperationException($"Unknown test: {name}"),
        };
    }
}
