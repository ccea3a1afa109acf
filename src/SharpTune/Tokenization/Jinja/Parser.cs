namespace SharpTune.Tokenization.Jinja;

/// <summary>Recursive-descent parser with Jinja's precedence (same grammar as @huggingface/jinja, plus test arguments).</summary>
internal sealed class Parser
{
    private readonly List<Token> _tokens;
    private readonly string _source;
    private int _current;

    private Parser(List<Token> tokens, string source)
    {
        _tokens = tokens;
        _source = source;
    }

    public static ProgramNode Parse(List<Token> tokens, string source)
    {
        var parser = new Parser(tokens, source);
        var body = new List<Node>();
        while (parser._current < tokens.Count) body.Add(parser.ParseAny());
        return new ProgramNode(body) { Position = 0 };
    }

    private Token Peek(int ahead = 0) =>
        _current + ahead < _tokens.Count ? _tokens[_current + ahead] : throw Error("Unexpected end of template", _source.Length);

    private int Here => _current < _tokens.Count ? _tokens[_current].Position : _source.Length;

    private TemplateException Error(string message, int? position = null) => TemplateException.At(_source, position ?? Here, message);

    private Token Expect(TokenType type, string error)
    {
        if (_current >= _tokens.Count) throw Error($"{error}, but the template ended", _source.Length);
        var token = _tokens[_current++];
        if (token.Type != type) throw Error($"{error}, found {token.Type} '{token.Value}'", token.Position);
        return token;
    }

    private bool Is(params TokenType[] types)
    {
        if (_current + types.Length > _tokens.Count) return false;
        for (var i = 0; i < types.Length; i++) if (_tokens[_current + i].Type != types[i]) return false;
        return true;
    }

    private bool IsStatement(params string[] names) =>
        _current + 1 < _tokens.Count && _tokens[_current].Type == TokenType.OpenStatement
        && _tokens[_current + 1].Type == TokenType.Identifier && names.Contains(_tokens[_current + 1].Value);

    private bool IsIdentifier(params string[] names)
    {
        if (_current + names.Length > _tokens.Count) return false;
        for (var i = 0; i < names.Length; i++)
            if (_tokens[_current + i].Type != TokenType.Identifier || _tokens[_current + i].Value != names[i]) return false;
        return true;
    }

    private void ExpectIdentifier(string name)
    {
        if (!IsIdentifier(name)) throw Error($"Expected '{name}'");
        ++_current;
    }

    private List<Node> ParseUntil(params string[] statements)
    {
        var body = new List<Node>();
        while (!IsStatement(statements))
        {
            if (_current >= _tokens.Count) throw Error($"Unexpected end of template: missing {{% {string.Join(" / ", statements)} %}}", _source.Length);
            body.Add(ParseAny());
        }
        return body;
    }

    private void ExpectEnd(string name)
    {
        Expect(TokenType.OpenStatement, "Expected '{%'");
        ExpectIdentifier(name);
        Expect(TokenType.CloseStatement, "Expected '%}'");
    }

    private Node ParseAny()
    {
        var token = Peek();
        switch (token.Type)
        {
            case TokenType.Comment:
                _current++;
                return new CommentNode(token.Value) { Position = token.Position };
            case TokenType.Text:
                _current++;
                return new StringLiteralNode(token.Value) { Position = token.Position };
            case TokenType.OpenStatement:
                return ParseStatement();
            case TokenType.OpenExpression:
                _current++;
                var expression = ParseExpression();
                Expect(TokenType.CloseExpression, "Expected '}}'");
                return expression;
            default:
                throw Error($"Unexpected token {token.Type} '{token.Value}'", token.Position);
        }
    }

    private Node ParseStatement()
    {
        var open = Expect(TokenType.OpenStatement, "Expected '{%'");
        var nameToken = Peek();
        if (nameToken.Type != TokenType.Identifier) throw Error($"Unknown statement, got {nameToken.Type}", nameToken.Position);
        var at = open.Position;
        switch (nameToken.Value)
        {
            case "set":
                ++_current;
                return ParseSet(at);
            case "if":
            {
                ++_current;
                var result = ParseIf(at);
                ExpectEnd("endif");
                return result;
            }
            case "macro":
            {
                ++_current;
                var name = ParsePrimary();
                if (name is not IdentifierNode identifier) throw Error("Expected identifier following macro statement", name.Position);
                var args = ParseArgs(parameters: true);
                Expect(TokenType.CloseStatement, "Expected '%}'");
                var body = ParseUntil("endmacro");
                ExpectEnd("endmacro");
                return new MacroNode(identifier, args, body) { Position = at };
            }
            case "for":
            {
                ++_current;
                var result = ParseFor(at);
                ExpectEnd("endfor");
                return result;
            }
            case "call":
            {
                ++_current;
                List<Node>? callerArgs = null;
                if (Is(TokenType.OpenParen)) callerArgs = ParseArgs(parameters: true);
                var callee = ParsePrimary();
                if (callee is not IdentifierNode) throw Error("Expected identifier following call statement", callee.Position);
                var callArgs = ParseArgs(parameters: false);
                Expect(TokenType.CloseStatement, "Expected '%}'");
                var body = ParseUntil("endcall");
                ExpectEnd("endcall");
                return new CallStatementNode(new CallNode(callee, callArgs) { Position = callee.Position }, callerArgs, body) { Position = at };
            }
            case "break":
                ++_current;
                Expect(TokenType.CloseStatement, "Expected '%}'");
                return new BreakNode { Position = at };
            case "continue":
                ++_current;
                Expect(TokenType.CloseStatement, "Expected '%}'");
                return new ContinueNode { Position = at };
            case "filter":
            {
                ++_current;
                var filter = ParsePrimary();
                if (filter is IdentifierNode && Is(TokenType.OpenParen)) filter = ParseCall(filter);
                Expect(TokenType.CloseStatement, "Expected '%}'");
                var body = ParseUntil("endfilter");
                ExpectEnd("endfilter");
                return new FilterStatementNode(filter, body) { Position = at };
            }
            default:
                throw Error($"Unknown statement type: {nameToken.Value}", nameToken.Position);
        }
    }

    private Node ParseSet(int at)
    {
        var left = ParseExpressionSequence();
        Node? value = null;
        var body = new List<Node>();
        if (Is(TokenType.Equals))
        {
            ++_current;
            value = ParseExpressionSequence();
        }
        else
        {
            Expect(TokenType.CloseStatement, "Expected '%}'");
            body = ParseUntil("endset");
            Expect(TokenType.OpenStatement, "Expected '{%'");
            ExpectIdentifier("endset");
        }
        Expect(TokenType.CloseStatement, "Expected '%}'");
        return new SetNode(left, value, body) { Position = at };
    }

    private IfNode ParseIf(int at)
    {
        var test = ParseExpression();
        Expect(TokenType.CloseStatement, "Expected '%}'");
        var body = ParseUntil("elif", "else", "endif");
        var alternate = new List<Node>();
        if (IsStatement("elif"))
        {
            var elifAt = Peek().Position;
            _current += 2;
            alternate.Add(ParseIf(elifAt));
        }
        else if (IsStatement("else"))
        {
            _current += 2;
            Expect(TokenType.CloseStatement, "Expected '%}'");
            alternate = ParseUntil("endif");
        }
        return new IfNode(test, body, alternate) { Position = at };
    }

    private ForNode ParseFor(int at)
    {
        var loopVar = ParseExpressionSequence(primary: true);
        if (loopVar is not (IdentifierNode or TupleLiteralNode)) throw Error("Expected identifier/tuple for the loop variable", loopVar.Position);
        if (!IsIdentifier("in")) throw Error("Expected 'in' keyword following loop variable");
        ++_current;
        var iterable = ParseExpression();
        Expect(TokenType.CloseStatement, "Expected '%}'");
        var body = ParseUntil("endfor", "else");
        var alternative = new List<Node>();
        if (IsStatement("else"))
        {
            _current += 2;
            Expect(TokenType.CloseStatement, "Expected '%}'");
            alternative = ParseUntil("endfor");
        }
        return new ForNode(loopVar, iterable, body, alternative) { Position = at };
    }

    private Node ParseExpressionSequence(bool primary = false)
    {
        var at = Here;
        var expressions = new List<Node> { primary ? ParsePrimary() : ParseExpression() };
        var isTuple = Is(TokenType.Comma);
        while (isTuple)
        {
            ++_current;
            expressions.Add(primary ? ParsePrimary() : ParseExpression());
            if (!Is(TokenType.Comma)) break;
        }
        return isTuple ? new TupleLiteralNode(expressions) { Position = at } : expressions[0];
    }

    private Node ParseExpression() => ParseIfExpression();

    private Node ParseIfExpression()
    {
        var a = ParseLogicalOr();
        if (IsIdentifier("if"))
        {
            ++_current;
            var test = ParseLogicalOr();
            if (IsIdentifier("else"))
            {
                ++_current;
                var falseExpr = ParseIfExpression();
                return new TernaryNode(test, a, falseExpr) { Position = a.Position };
            }
            return new SelectNode(a, test) { Position = a.Position };
        }
        return a;
    }

    private Node ParseLogicalOr()
    {
        var left = ParseLogicalAnd();
        while (IsIdentifier("or"))
        {
            ++_current;
            left = new BinaryNode("or", left, ParseLogicalAnd()) { Position = left.Position };
        }
        return left;
    }

    private Node ParseLogicalAnd()
    {
        var left = ParseLogicalNot();
        while (IsIdentifier("and"))
        {
            ++_current;
            left = new BinaryNode("and", left, ParseLogicalNot()) { Position = left.Position };
        }
        return left;
    }

    private Node ParseLogicalNot()
    {
        if (IsIdentifier("not"))
        {
            var at = Here;
            ++_current;
            return new UnaryNode("not", ParseLogicalNot()) { Position = at };
        }
        return ParseComparison();
    }

    private Node ParseComparison()
    {
        var left = ParseAdditive();
        while (true)
        {
            string op;
            if (IsIdentifier("not", "in")) { op = "not in"; _current += 2; }
            else if (IsIdentifier("in")) { op = "in"; _current++; }
            else if (Is(TokenType.ComparisonBinaryOperator)) op = _tokens[_current++].Value;
            else break;
            left = new BinaryNode(op, left, ParseAdditive()) { Position = left.Position };
        }
        return left;
    }

    private Node ParseAdditive()
    {
        var left = ParseMultiplicative();
        while (Is(TokenType.AdditiveBinaryOperator))
        {
            var op = _tokens[_current++].Value;
            left = new BinaryNode(op, left, ParseMultiplicative()) { Position = left.Position };
        }
        return left;
    }

    private Node ParseMultiplicative()
    {
        var left = ParsePower();
        while (Is(TokenType.MultiplicativeBinaryOperator))
        {
            var op = _tokens[_current++].Value;
            left = new BinaryNode(op, left, ParsePower()) { Position = left.Position };
        }
        return left;
    }

    private Node ParsePower()
    {
        var left = ParseTest();
        while (Is(TokenType.ExponentiationBinaryOperator))
        {
            _current++;
            left = new BinaryNode("**", left, ParseTest()) { Position = left.Position };
        }
        return left;
    }

    private Node ParseTest()
    {
        var operand = ParseFilter();
        while (IsIdentifier("is"))
        {
            ++_current;
            var negate = IsIdentifier("not");
            if (negate) ++_current;
            var test = ParsePrimary();
            if (test is not IdentifierNode identifier) throw Error("Expected identifier for the test", test.Position);
            // Jinja allows arguments to tests: `x is divisibleby(3)` or, for one argument, `x is equalto 1`.
            var args = Is(TokenType.OpenParen) ? ParseArgs(parameters: false)
                : StartsBareTestArgument() ? [ParseMember(ParsePrimary())] : [];
            operand = new TestNode(operand, negate, identifier.Name, args) { Position = operand.Position };
        }
        return operand;
    }

    private bool StartsBareTestArgument() =>
        _current < _tokens.Count && _tokens[_current] switch
        {
            { Type: TokenType.NumericLiteral or TokenType.StringLiteral } => true,
            { Type: TokenType.Identifier, Value: var v } => v is not ("and" or "or" or "else" or "if" or "is" or "in" or "not"),
            _ => false,
        };

    private Node ParseFilter()
    {
        var operand = ParseUnarySign();
        while (Is(TokenType.Pipe))
        {
            ++_current;
            var filter = ParsePrimary();
            if (filter is not IdentifierNode) throw Error("Expected identifier for the filter", filter.Position);
            if (Is(TokenType.OpenParen)) filter = ParseCall(filter);
            operand = new FilterNode(operand, filter) { Position = operand.Position };
        }
        return operand;
    }

    private Node ParseUnarySign()
    {
        if (_current < _tokens.Count && _tokens[_current] is { Type: TokenType.UnaryOperator or TokenType.AdditiveBinaryOperator, Value: "-" or "+" } token)
        {
            _current++;
            return new UnaryNode(token.Value, ParseUnarySign()) { Position = token.Position };
        }
        return ParseCallMember();
    }

    private Node ParseCallMember()
    {
        var member = ParseMember(ParsePrimary());
        return Is(TokenType.OpenParen) ? ParseCall(member) : member;
    }

    private Node ParseCall(Node callee)
    {
        Node expression = new CallNode(callee, ParseArgs(parameters: false)) { Position = callee.Position };
        expression = ParseMember(expression);
        if (Is(TokenType.OpenParen)) expression = ParseCall(expression);
        return expression;
    }

    private List<Node> ParseArgs(bool parameters)
    {
        Expect(TokenType.OpenParen, "Expected '(' for the arguments list");
        var args = new List<Node>();
        var sawKeyword = false;
        while (!Is(TokenType.CloseParen))
        {
            if (_current >= _tokens.Count) throw Error("Expected ')' to close the arguments list", _source.Length);
            if (!parameters && Is(TokenType.ExponentiationBinaryOperator))
            {
                var at = Here;
                ++_current;
                args.Add(new KeywordSpreadNode(ParseExpression()) { Position = at });
                if (Is(TokenType.Comma)) ++_current;
                break;
            }
            if (!parameters && Is(TokenType.MultiplicativeBinaryOperator) && Peek().Value == "*")
            {
                var at = Here;
                ++_current;
                args.Add(new SpreadNode(ParseExpression()) { Position = at });
            }
            else
            {
                var argument = ParseExpression();
                if (Is(TokenType.Equals))
                {
                    ++_current;
                    if (argument is not IdentifierNode key) throw Error("Expected identifier for keyword argument", argument.Position);
                    argument = new KeywordArgumentNode(key, ParseExpression()) { Position = argument.Position };
                    sawKeyword = true;
                }
                else if (sawKeyword)
                    throw Error(parameters ? "Non-default argument follows default argument" : "Positional arguments must come before keyword arguments", argument.Position);
                if (parameters && argument is not (IdentifierNode or KeywordArgumentNode))
                    throw Error("Expected identifier for parameter declaration", argument.Position);
                args.Add(argument);
            }
            if (Is(TokenType.Comma)) ++_current;
        }
        Expect(TokenType.CloseParen, "Expected ')' to close the arguments list");
        return args;
    }

    private Node ParseMemberArguments()
    {
        var at = Here;
        var slices = new List<Node?>();
        var isSlice = false;
        while (!Is(TokenType.CloseSquareBracket))
        {
            if (_current >= _tokens.Count) throw Error("Expected ']'", _source.Length);
            if (Is(TokenType.Colon))
            {
                slices.Add(null);
                ++_current;
                isSlice = true;
            }
            else
            {
                slices.Add(ParseExpression());
                if (Is(TokenType.Colon)) { ++_current; isSlice = true; }
            }
        }
        if (slices.Count == 0) throw Error("Expected at least one argument for member/slice expression", at);
        if (isSlice)
        {
            if (slices.Count > 3) throw Error("Expected 0-3 arguments for slice expression", at);
            return new SliceNode(slices.ElementAtOrDefault(0), slices.ElementAtOrDefault(1), slices.ElementAtOrDefault(2)) { Position = at };
        }
        return slices[0]!;
    }

    private Node ParseMember(Node obj)
    {
        while (Is(TokenType.Dot) || Is(TokenType.OpenSquareBracket))
        {
            var op = _tokens[_current++];
            Node property;
            var computed = op.Type == TokenType.OpenSquareBracket;
            if (computed)
            {
                property = ParseMemberArguments();
                Expect(TokenType.CloseSquareBracket, "Expected ']'");
            }
            else
            {
                property = ParsePrimary();
                if (property is not (IdentifierNode or IntegerLiteralNode)) throw Error("Expected identifier or integer following dot operator", property.Position);
            }
            obj = new MemberNode(obj, property, computed) { Position = obj.Position };
        }
        return obj;
    }

    private Node ParsePrimary()
    {
        if (_current >= _tokens.Count) throw Error("Unexpected end of template", _source.Length);
        var token = _tokens[_current++];
        var at = token.Position;
        switch (token.Type)
        {
            case TokenType.NumericLiteral:
                return token.Value.Contains('.')
                    ? new FloatLiteralNode(double.Parse(token.Value, System.Globalization.CultureInfo.InvariantCulture)) { Position = at }
                    : new IntegerLiteralNode(long.Parse(token.Value, System.Globalization.CultureInfo.InvariantCulture)) { Position = at };
            case TokenType.StringLiteral:
            {
                var value = token.Value;
                while (Is(TokenType.StringLiteral)) value += _tokens[_current++].Value;
                return new StringLiteralNode(value) { Position = at };
            }
            case TokenType.Identifier:
                return new IdentifierNode(token.Value) { Position = at };
            case TokenType.OpenParen:
            {
                var expression = ParseExpressionSequence();
                Expect(TokenType.CloseParen, "Expected ')'");
                return expression;
            }
            case TokenType.OpenSquareBracket:
            {
                var values = new List<Node>();
                while (!Is(TokenType.CloseSquareBracket))
                {
                    if (_current >= _tokens.Count) throw Error("Expected ']'", _source.Length);
                    values.Add(ParseExpression());
                    if (Is(TokenType.Comma)) ++_current;
                }
                ++_current;
                return new ArrayLiteralNode(values) { Position = at };
            }
            case TokenType.OpenCurlyBracket:
            {
                var entries = new List<(Node, Node)>();
                while (!Is(TokenType.CloseCurlyBracket))
                {
                    if (_current >= _tokens.Count) throw Error("Expected '}'", _source.Length);
                    var key = ParseExpression();
                    Expect(TokenType.Colon, "Expected ':' between key and value in object literal");
                    entries.Add((key, ParseExpression()));
                    if (Is(TokenType.Comma)) ++_current;
                }
                ++_current;
                return new ObjectLiteralNode(entries) { Position = at };
            }
            default:
                throw Error($"Unexpected token: {token.Type} '{token.Value}'", at);
        }
    }
}
