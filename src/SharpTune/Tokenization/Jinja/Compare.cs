namespace SharpTune.Tokenization.Jinja;

/// <summary>Equality and ordering as the reference evaluates them (JavaScript == / === on the underlying values).</summary>
internal static class Compare
{
    public static bool IsNumericLike(Value v) => v is IntValue or FloatValue or BoolValue;

    public static double Number(Value v) => v switch
    {
        IntValue i => i.V,
        FloatValue f => f.V,
        BoolValue b => b.V ? 1 : 0,
        _ => double.NaN,
    };

    /// <summary>JavaScript ===: numbers by value, strings ordinally, containers by identity.</summary>
    public static bool StrictEquals(Value a, Value b) => (a, b) switch
    {
        (IntValue or FloatValue, IntValue or FloatValue) => Number(a) == Number(b),
        (StringValue x, StringValue y) => x.V == y.V,
        (BoolValue x, BoolValue y) => x.V == y.V,
        (NullValue, NullValue) => true,
        (UndefinedValue, UndefinedValue) => true,
        _ => ReferenceEquals(UnderlyingIdentity(a), UnderlyingIdentity(b)),
    };

    private static object UnderlyingIdentity(Value v) => v switch
    {
        ArrayValue a => a.Items,
        ObjectValue o => o.Map,
        NamespaceValue n => n.Map,
        _ => v,
    };

    /// <summary>JavaScript ==: null equals undefined, booleans and numeric strings compare as numbers.</summary>
    public static bool LooseEquals(Value a, Value b)
    {
        if (a is NullValue or UndefinedValue || b is NullValue or UndefinedValue) return a is NullValue or UndefinedValue && b is NullValue or UndefinedValue;
        if (a is BoolValue ab) return LooseEquals(new IntValue(ab.V ? 1 : 0), b);
        if (b is BoolValue bb) return LooseEquals(a, new IntValue(bb.V ? 1 : 0));
        if (a is IntValue or FloatValue && b is StringValue bs) return Number(a) == ToNumber(bs.V);
        if (a is StringValue @as && b is IntValue or FloatValue) return ToNumber(@as.V) == Number(b);
        return StrictEquals(a, b);
    }

    private static double ToNumber(string s)
    {
        var t = s.Trim();
        if (t.Length == 0) return 0;
        return double.TryParse(t, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var d) ? d : double.NaN;
    }

    /// <summary>Ordering used by sort and dictsort; strings case-insensitive unless asked.</summary>
    public static int Order(Value a, Value b, bool caseSensitive)
    {
        if (a is NullValue && b is NullValue) return 0;
        if (a is NullValue || b is NullValue) throw new InvalidOperationException($"Cannot compare {a.TypeName} with {b.TypeName}");
        if (a is UndefinedValue && b is UndefinedValue) return 0;
        if (a is UndefinedValue || b is UndefinedValue) throw new InvalidOperationException($"Cannot compare {a.TypeName} with {b.TypeName}");
        if (IsNumericLike(a) && IsNumericLike(b)) return Number(a).CompareTo(Number(b));
        if (a is StringValue x && b is StringValue y)
        {
            var sa = caseSensitive ? x.V : x.V.ToLowerInvariant();
            var sb = caseSensitive ? y.V : y.V.ToLowerInvariant();
            return Math.Sign(string.CompareOrdinal(sa, sb));
        }
        throw new InvalidOperationException(a.TypeName != b.TypeName ? $"Cannot compare different types: {a.TypeName} and {b.TypeName}" : $"Cannot compare type: {a.TypeName}");
    }
}
