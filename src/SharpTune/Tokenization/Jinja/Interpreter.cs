using System.Globalization;
using System.Text;

namespace SharpTune.Tokenization.Jinja;

/// <summary>
/// Evaluates a parsed template. Semantics follow @huggingface/jinja (what transformers.js renders chat templates with),
/// extended with common Python Jinja features it lacks (select/reject, map by filter, loop.cycle, test arguments, ...).
/// </summary>
internal sealed partial class Interpreter(string source)
{
    public string Run(ProgramNode program, Environment environment) => EvaluateBlock(program.Body, environment).V;

    private StringValue EvaluateBlock(List<Node> statements, Environment environment)
    {
        var result = new StringBuilder();
        foreach (var statement in statements)
        {
            var value = Evaluate(statement, environment);
            if (value is not (NullValue or UndefinedValue)) result.Append(value.ToString());
        }
        return new StringValue(result.ToString());
    }

    public Value Evaluate(Node? node, Environment environment)
    {
        if (node is null) return UndefinedValue.Instance;
        try
        {
            return EvaluateCore(node, environment);
        }
        catch (Exception e) when (e is not TemplateException and not BreakSignal and not ContinueSignal)
        {
            throw TemplateException.At(source, node.Position, e.Message, e as RaisedException);
        }
    }

    private Value EvaluateCore(Node node, Environment environment)
    {
        switch (node)
        {
            case StringLiteralNode s: return new StringValue(s.Value);
            case IntegerLiteralNode i: return new IntValue(i.Value);
            case FloatLiteralNode f: return new FloatValue(f.Value);
            case IdentifierNode id: return environment.Lookup(id.Name);
            case CommentNode: return NullValue.Instance;
            case ArrayLiteralNode a: return new ArrayValue(a.Items.Select(x => Evaluate(x, environment)).ToList());
            case TupleLiteralNode t: return new TupleValue(t.Items.Select(x => Evaluate(x, environment)).ToList());
            case ObjectLiteralNode o:
            {
                var map = new OrderedMap();
                foreach (var (keyNode, valueNode) in o.Entries)
                {
                    if (Evaluate(keyNode, environment) is not StringValue key) throw new InvalidOperationException("Object keys must be strings");
                    map.Set(key.V, Evaluate(valueNode, environment));
                }
                return new ObjectValue(map);
            }
            case SetNode set: return EvaluateSet(set, environment);
            case IfNode @if: return EvaluateBlock(Evaluate(@if.Test, environment).Truthy ? @if.Body : @if.Alternate, environment);
            case ForNode @for: return EvaluateFor(@for, environment);
            case MacroNode macro: return EvaluateMacro(macro, environment);
            case CallStatementNode call: return EvaluateCallStatement(call, environment);
            case BreakNode: throw new BreakSignal();
            case ContinueNode: throw new ContinueSignal();
            case CallNode call: return EvaluateCall(call, environment);
            case MemberNode member: return EvaluateMember(member, environment);
            case UnaryNode unary: return EvaluateUnary(unary, environment);
            case BinaryNode binary: return EvaluateBinary(binary, environment);
            case FilterNode filter: return ApplyFilter(Evaluate(filter.Operand, environment), filter.Filter, environment);
            case FilterStatementNode filterStatement: return ApplyFilter(EvaluateBlock(filterStatement.Body, environment), filterStatement.Filter, environment);
            case TestNode test: return EvaluateTest(test, environment);
            case SelectNode select: return Evaluate(select.Test, environment).Truthy ? Evaluate(select.Lhs, environment) : UndefinedValue.Instance;
            case TernaryNode ternary:
                return Evaluate(ternary.Condition, environment).Truthy ? Evaluate(ternary.TrueExpr, environment) : Evaluate(ternary.FalseExpr, environment);
            case ProgramNode program: return EvaluateBlock(program.Body, environment);
            default: throw new InvalidOperationException($"Unknown node type: {node.GetType().Name}");
        }
    }

    private NullValue EvaluateSet(SetNode node, Environment environment)
    {
        var rhs = node.Value is not null ? Evaluate(node.Value, environment) : EvaluateBlock(node.Body, environment);
        switch (node.Assignee)
        {
            case IdentifierNode id:
                environment.Set(id.Name, rhs);
                break;
            case TupleLiteralNode tuple:
                if (rhs is not ArrayValue array) throw new InvalidOperationException($"Cannot unpack non-iterable type in set: {rhs.TypeName}");
                if (array.Items.Count != tuple.Items.Count)
                    throw new InvalidOperationException($"Too {(tuple.Items.Count > array.Items.Count ? "few" : "many")} items to unpack in set");
                for (var i = 0; i < tuple.Items.Count; i++)
                {
                    if (tuple.Items[i] is not IdentifierNode element) throw new InvalidOperationException("Cannot unpack to non-identifier in set");
                    environment.Set(element.Name, array.Items[i]);
                }
                break;
            case MemberNode member:
                if (Evaluate(member.Object, environment) is not NamespaceValue ns) throw new InvalidOperationException("cannot assign attribute on non-namespace object");
                if (member.Property is not IdentifierNode property) throw new InvalidOperationException("Cannot assign to member with non-identifier property");
                ns.Map.Set(property.Name, rhs);
                break;
            default:
                throw new InvalidOperationException("Invalid left-hand side of assignment");
        }
        return NullValue.Instance;
    }

    private StringValue EvaluateFor(ForNode node, Environment environment)
    {
        var scope = new Environment(environment);
        Node? test = null;
        Value iterable;
        if (node.Iterable is SelectNode select)
        {
            iterable = Evaluate(select.Lhs, scope);
            test = select.Test;
        }
        else iterable = Evaluate(node.Iterable, scope);

        List<Value> source = iterable switch
        {
            ArrayValue a => a.Items,
            ObjectValue o => o.Map.Keys.Select(k => (Value)new StringValue(k)).ToList(),
            StringValue s => CodePoints(s.V).Select(c => (Value)new StringValue(c)).ToList(),
            _ => throw new InvalidOperationException($"Expected iterable or object type in for loop: got {iterable.TypeName}"),
        };

        var items = new List<Value>();
        foreach (var current in source)
        {
            if (test is not null)
            {
                var loopScope = new Environment(scope);
                AssignLoopVariable(node.LoopVar, current, loopScope);
                if (!Evaluate(test, loopScope).Truthy) continue;
            }
            items.Add(current);
        }

        var result = new StringBuilder();
        var noIteration = true;
        for (var i = 0; i < items.Count; i++)
        {
            var loop = new OrderedMap();
            loop.Set("index", new IntValue(i + 1));
            loop.Set("index0", new IntValue(i));
            loop.Set("revindex", new IntValue(items.Count - i));
            loop.Set("revindex0", new IntValue(items.Count - i - 1));
            loop.Set("first", BoolValue.Of(i == 0));
            loop.Set("last", BoolValue.Of(i == items.Count - 1));
            loop.Set("length", new IntValue(items.Count));
            loop.Set("previtem", i > 0 ? items[i - 1] : UndefinedValue.Instance);
            loop.Set("nextitem", i < items.Count - 1 ? items[i + 1] : UndefinedValue.Instance);
            loop.Set("depth", new IntValue(1));
            loop.Set("depth0", new IntValue(0));
            var index = i;
            loop.Set("cycle", new FunctionValue((args, _) => args.Count == 0 ? UndefinedValue.Instance : args[index % args.Count]));
            scope.Set("loop", new ObjectValue(loop));
            AssignLoopVariable(node.LoopVar, items[i], scope);
            try
            {
                result.Append(EvaluateBlock(node.Body, scope).V);
            }
            catch (ContinueSignal) { continue; }
            catch (BreakSignal) { break; }
            noIteration = false;
        }
        if (noIteration) result.Append(EvaluateBlock(node.DefaultBlock, scope).V);
        return new StringValue(result.ToString());
    }

    private static void AssignLoopVariable(Node loopVar, Value current, Environment scope)
    {
        if (loopVar is IdentifierNode id) { scope.Set(id.Name, current); return; }
        var tuple = (TupleLiteralNode)loopVar;
        if (current is not ArrayValue array) throw new InvalidOperationException($"Cannot unpack non-iterable type: {current.TypeName}");
        if (tuple.Items.Count != array.Items.Count)
            throw new InvalidOperationException($"Too {(tuple.Items.Count > array.Items.Count ? "few" : "many")} items to unpack");
        for (var j = 0; j < tuple.Items.Count; j++)
        {
            if (tuple.Items[j] is not IdentifierNode element) throw new InvalidOperationException("Cannot unpack non-identifier type");
            scope.Set(element.Name, array.Items[j]);
        }
    }

    private void BindMacroArguments(string displayName, List<Node> parameters, List<Value> args, Environment scope)
    {
        var positional = args.ToList();
        var keyword = new OrderedMap();
        if (positional.Count > 0 && positional[^1] is KwargsValue kwargs)
        {
            positional.RemoveAt(positional.Count - 1);
            foreach (var (k, v) in kwargs.Map) keyword.Set(k, v);
        }
        var pendingDefaults = new List<(string Name, Node Default)>();
        for (var i = 0; i < parameters.Count; i++)
        {
            var (name, defaultValue) = parameters[i] switch
            {
                IdentifierNode id => (id.Name, (Node?)null),
                KeywordArgumentNode kw => (kw.Key.Name, kw.Value),
                _ => throw new InvalidOperationException("Invalid macro parameter"),
            };
            Value? value = i < positional.Count ? positional[i] : null;
            if (value is null && keyword.Get(name) is { } fromKeyword)
            {
                value = fromKeyword;
                keyword.Remove(name);
            }
            if (value is null && defaultValue is not null) pendingDefaults.Add((name, defaultValue));
            scope.Set(name, value ?? UndefinedValue.Instance);
        }
        scope.Set("kwargs", new ObjectValue(keyword));
        scope.Set("varargs", new ArrayValue(positional.Skip(parameters.Count).ToList()));
        foreach (var (name, defaultValue) in pendingDefaults) scope.Set(name, Evaluate(defaultValue, scope));
        _ = displayName;
    }

    private NullValue EvaluateMacro(MacroNode node, Environment environment)
    {
        environment.Set(node.Name.Name, new FunctionValue((args, scope) =>
        {
            var macroScope = new Environment(scope);
            BindMacroArguments(node.Name.Name, node.Args, args, macroScope);
            return EvaluateBlock(node.Body, macroScope);
        }));
        return NullValue.Instance;
    }

    private Value EvaluateCallStatement(CallStatementNode node, Environment environment)
    {
        var parameters = node.CallerArgs ?? [];
        var caller = new FunctionValue((callerArgs, _) =>
        {
            var callBlockScope = new Environment(environment);
            BindMacroArguments("caller", parameters, callerArgs, callBlockScope);
            return EvaluateBlock(node.Body, callBlockScope);
        });
        var (args, kwargs) = EvaluateArguments(node.Call.Args, environment);
        args.Add(new KwargsValue(kwargs));
        if (Evaluate(node.Call.Callee, environment) is not FunctionValue fn)
            throw new InvalidOperationException("Cannot call something that is not a function");
        var callScope = new Environment(environment);
        callScope.Set("caller", caller);
        return fn.Function(args, callScope);
    }

    private (List<Value> Args, OrderedMap Kwargs) EvaluateArguments(List<Node> args, Environment environment)
    {
        var positional = new List<Value>();
        var keyword = new OrderedMap();
        foreach (var argument in args)
        {
            switch (argument)
            {
                case SpreadNode spread:
                    if (Evaluate(spread.Argument, environment) is not ArrayValue array) throw new InvalidOperationException("Cannot unpack non-iterable value");
                    positional.AddRange(array.Items);
                    break;
                case KeywordArgumentNode or KeywordSpreadNode:
                    break;
                default:
                    positional.Add(Evaluate(argument, environment));
                    break;
            }
        }
        foreach (var argument in args)
        {
            if (argument is KeywordArgumentNode kw)
            {
                if (keyword.ContainsKey(kw.Key.Name)) throw new InvalidOperationException($"Got multiple values for keyword argument '{kw.Key.Name}'");
                keyword.Set(kw.Key.Name, Evaluate(kw.Value, environment));
            }
            else if (argument is KeywordSpreadNode ks)
            {
                if (Evaluate(ks.Argument, environment) is not ObjectValue obj) throw new InvalidOperationException("Argument after ** must be a mapping");
                foreach (var (k, v) in obj.Map)
                {
                    if (keyword.ContainsKey(k)) throw new InvalidOperationException($"Got multiple values for keyword argument '{k}'");
                    keyword.Set(k, v);
                }
            }
        }
        return (positional, keyword);
    }

    private Value EvaluateCall(CallNode node, Environment environment)
    {
        var (args, kwargs) = EvaluateArguments(node.Args, environment);
        if (kwargs.Count > 0) args.Add(new KwargsValue(kwargs));
        var fn = Evaluate(node.Callee, environment);
        if (fn is not FunctionValue function) throw new InvalidOperationException($"Cannot call something that is not a function: got {fn.TypeName}");
        return function.Function(args, environment);
    }

    private Value EvaluateMember(MemberNode node, Environment environment)
    {
        var obj = Evaluate(node.Object, environment);
        Value property;
        if (node.Computed)
        {
            if (node.Property is SliceNode slice) return EvaluateSlice(obj, slice, environment);
            property = Evaluate(node.Property, environment);
        }
        else if (node.Property is IntegerLiteralNode integer) property = new IntValue(integer.Value);
        else property = new StringValue(((IdentifierNode)node.Property).Name);

        Value? value;
        switch (obj)
        {
            case ObjectValue or NamespaceValue:
            {
                if (property is not StringValue key) throw new InvalidOperationException($"Cannot access property with non-string: got {property.TypeName}");
                var map = obj is ObjectValue o ? o.Map : ((NamespaceValue)obj).Map;
                value = map.Get(key.V) ?? (obj is ObjectValue ov ? Builtins.ForObject(ov, key.V) : null);
                break;
            }
            case ArrayValue or StringValue:
                if (property is IntValue index)
                {
                    if (obj is StringValue s)
                    {
                        var i = index.V < 0 ? s.V.Length + index.V : index.V;
                        value = i >= 0 && i < s.V.Length ? new StringValue(s.V[(int)i].ToString()) : null;
                    }
                    else
                    {
                        var items = ((ArrayValue)obj).Items;
                        var i = index.V < 0 ? items.Count + index.V : index.V;
                        value = i >= 0 && i < items.Count ? items[(int)i] : null;
                    }
                }
                else if (property is StringValue name) value = obj is StringValue sv ? Builtins.ForString(sv, name.V) : Builtins.ForArray((ArrayValue)obj, name.V);
                else throw new InvalidOperationException($"Cannot access property with non-string/non-number: got {property.TypeName}");
                break;
            default:
                if (property is not StringValue) throw new InvalidOperationException($"Cannot access property with non-string: got {property.TypeName}");
                value = null;
                break;
        }
        return value ?? UndefinedValue.Instance;
    }

    private Value EvaluateSlice(Value obj, SliceNode node, Environment environment)
    {
        if (obj is not (ArrayValue or StringValue)) throw new InvalidOperationException("Slice object must be an array or string");
        long? Bound(Node? n, string what) => Evaluate(n, environment) switch
        {
            IntValue i => i.V,
            UndefinedValue => null,
            _ => throw new InvalidOperationException($"Slice {what} must be numeric or undefined"),
        };
        var start = Bound(node.Start, "start");
        var stop = Bound(node.Stop, "stop");
        var step = Bound(node.Step, "step") ?? 1;
        if (obj is ArrayValue array) return new ArrayValue(Slice(array.Items, start, stop, step));
        return new StringValue(string.Concat(Slice(CodePoints(((StringValue)obj).V), start, stop, step)));
    }

    internal static List<T> Slice<T>(IReadOnlyList<T> array, long? start, long? stop, long step)
    {
        if (step == 0) throw new InvalidOperationException("slice step cannot be zero");
        var n = array.Count;
        long s, e;
        if (step > 0)
        {
            s = start is { } a ? (a < 0 ? Math.Max(n + a, 0) : Math.Min(a, n)) : 0;
            e = stop is { } b ? (b < 0 ? Math.Max(n + b, 0) : Math.Min(b, n)) : n;
        }
        else
        {
            s = start is { } a ? (a < 0 ? Math.Max(n + a, -1) : Math.Min(a, n - 1)) : n - 1;
            e = stop is { } b ? (b < -1 ? Math.Max(n + b, -1) : Math.Min(b, n - 1)) : -1;
        }
        var result = new List<T>();
        var direction = Math.Sign(step);
        for (var i = s; direction * i < direction * e; i += step) result.Add(array[(int)i]);
        return result;
    }

    internal static List<string> CodePoints(string s)
    {
        var result = new List<string>(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { result.Add(s.Substring(i, 2)); i++; }
            else result.Add(s[i].ToString());
        }
        return result;
    }

    private Value EvaluateUnary(UnaryNode node, Environment environment)
    {
        var argument = Evaluate(node.Argument, environment);
        switch (node.Operator)
        {
            case "not":
                return BoolValue.Of(!argument.Truthy);
            case "+":
            case "-":
                var sign = node.Operator == "-" ? -1 : 1;
                return argument switch
                {
                    IntValue i => new IntValue(sign * i.V),
                    FloatValue f => new FloatValue(sign * f.V),
                    BoolValue b => new IntValue(sign * (b.V ? 1 : 0)),
                    _ => throw new InvalidOperationException($"Unknown operator \"{node.Operator}\" for {argument.TypeName}"),
                };
            default:
                throw new InvalidOperationException($"Unknown operator: {node.Operator}");
        }
    }

    private Value EvaluateBinary(BinaryNode node, Environment environment)
    {
        var left = Evaluate(node.Left, environment);
        switch (node.Operator)
        {
            case "and": return left.Truthy ? Evaluate(node.Right, environment) : left;
            case "or": return left.Truthy ? left : Evaluate(node.Right, environment);
        }
        var right = Evaluate(node.Right, environment);
        var op = node.Operator;
        switch (op)
        {
            case "==": return BoolValue.Of(Compare.LooseEquals(left, right));
            case "!=": return BoolValue.Of(!Compare.LooseEquals(left, right));
        }
        if (left is UndefinedValue || right is UndefinedValue)
        {
            if (right is UndefinedValue && op is "in" or "not in") return BoolValue.Of(op == "not in");
            throw new InvalidOperationException($"Cannot perform operation {op} on undefined values");
        }
        if (left is NullValue || right is NullValue) throw new InvalidOperationException("Cannot perform operation on null values");
        if (op == "~") return new StringValue(left.Primitive + right.Primitive);
        if (op == "**" && Compare.IsNumericLike(left) && Compare.IsNumericLike(right))
        {
            var a = Compare.Number(left);
            var b = Compare.Number(right);
            if (a == 0 && b < 0) throw new InvalidOperationException("0.0 cannot be raised to a negative power");
            var result = Math.Pow(a, b);
            if (!double.IsFinite(result)) throw new InvalidOperationException("Exponentiation result is not a finite real number");
            return left is FloatValue || right is FloatValue || b < 0 ? new FloatValue(result) : new IntValue((long)result);
        }
        if (left is IntValue or FloatValue && right is IntValue or FloatValue)
        {
            var isFloat = left is FloatValue || right is FloatValue;
            if (!isFloat && op is "+" or "-" or "*" or "//" or "%")
            {
                var a = ((IntValue)left).V;
                var b = ((IntValue)right).V;
                switch (op)
                {
                    case "+": return new IntValue(a + b);
                    case "-": return new IntValue(a - b);
                    case "*": return new IntValue(a * b);
                    case "//": return new IntValue((long)Math.Floor((double)a / b));
                    case "%": return new IntValue(a % b);
                }
            }
            var x = Compare.Number(left);
            var y = Compare.Number(right);
            switch (op)
            {
                case "+": return new FloatValue(x + y);
                case "-": return new FloatValue(x - y);
                case "*": return new FloatValue(x * y);
                case "/": return new FloatValue(x / y);
                case "//": return new FloatValue(Math.Floor(x / y));
                case "%": return new FloatValue(x % y);
                case "<": return BoolValue.Of(x < y);
                case ">": return BoolValue.Of(x > y);
                case ">=": return BoolValue.Of(x >= y);
                case "<=": return BoolValue.Of(x <= y);
            }
        }
        else if (left is ArrayValue la && right is ArrayValue ra && op == "+")
            return new ArrayValue(la.Items.Concat(ra.Items).ToList());
        else if (right is ArrayValue list && op is "in" or "not in")
        {
            var member = list.Items.Any(x => Compare.StrictEquals(x, left));
            return BoolValue.Of(op == "in" ? member : !member);
        }

        if ((left is StringValue || right is StringValue) && op == "+") return new StringValue(left.Primitive + right.Primitive);
        if (left is StringValue ls && right is StringValue rs)
        {
            switch (op)
            {
                case "in": return BoolValue.Of(rs.V.Contains(ls.V, StringComparison.Ordinal));
                case "not in": return BoolValue.Of(!rs.V.Contains(ls.V, StringComparison.Ordinal));
                // Python compares strings; the JS reference does not (an extension here).
                case "<": return BoolValue.Of(string.CompareOrdinal(ls.V, rs.V) < 0);
                case ">": return BoolValue.Of(string.CompareOrdinal(ls.V, rs.V) > 0);
                case "<=": return BoolValue.Of(string.CompareOrdinal(ls.V, rs.V) <= 0);
                case ">=": return BoolValue.Of(string.CompareOrdinal(ls.V, rs.V) >= 0);
            }
        }
        if (left is StringValue key && right is ObjectValue obj && op is "in" or "not in")
            return BoolValue.Of(obj.Map.ContainsKey(key.V) == (op == "in"));
        if (op == "*" && left is StringValue repeated && right is IntValue times)
            return new StringValue(string.Concat(Enumerable.Repeat(repeated.V, (int)Math.Max(0, times.V))));
        throw new InvalidOperationException($"Unknown operator \"{op}\" between {left.TypeName} and {right.TypeName}");
    }

    private BoolValue EvaluateTest(TestNode node, Environment environment)
    {
        var operand = Evaluate(node.Operand, environment);
        var (args, _) = EvaluateArguments(node.Args, environment);
        var result = Tests.Run(node.Test, operand, args);
        return BoolValue.Of(node.Negate ? !result : result);
    }
}
