namespace SharpTune.Tokenization.Jinja;

/// <summary>Template syntax tree; <see cref="Node.Position"/> is the source offset used in error messages.</summary>
internal abstract record Node
{
    public int Position { get; init; }
}

internal sealed record ProgramNode(List<Node> Body) : Node;
internal sealed record IfNode(Node Test, List<Node> Body, List<Node> Alternate) : Node;
internal sealed record ForNode(Node LoopVar, Node Iterable, List<Node> Body, List<Node> DefaultBlock) : Node;
internal sealed record BreakNode : Node;
internal sealed record ContinueNode : Node;
internal sealed record SetNode(Node Assignee, Node? Value, List<Node> Body) : Node;
internal sealed record MacroNode(IdentifierNode Name, List<Node> Args, List<Node> Body) : Node;
internal sealed record CommentNode(string Value) : Node;
internal sealed record CallStatementNode(CallNode Call, List<Node>? CallerArgs, List<Node> Body) : Node;
internal sealed record FilterStatementNode(Node Filter, List<Node> Body) : Node;

internal sealed record MemberNode(Node Object, Node Property, bool Computed) : Node;
internal sealed record CallNode(Node Callee, List<Node> Args) : Node;
internal sealed record IdentifierNode(string Name) : Node;
internal sealed record IntegerLiteralNode(long Value) : Node;
internal sealed record FloatLiteralNode(double Value) : Node;
internal sealed record StringLiteralNode(string Value) : Node;
internal sealed record ArrayLiteralNode(List<Node> Items) : Node;
internal sealed record TupleLiteralNode(List<Node> Items) : Node;
internal sealed record ObjectLiteralNode(List<(Node Key, Node Value)> Entries) : Node;
internal sealed record BinaryNode(string Operator, Node Left, Node Right) : Node;
internal sealed record FilterNode(Node Operand, Node Filter) : Node;
internal sealed record TestNode(Node Operand, bool Negate, string Test, List<Node> Args) : Node;
internal sealed record UnaryNode(string Operator, Node Argument) : Node;
internal sealed record SliceNode(Node? Start, Node? Stop, Node? Step) : Node;
internal sealed record KeywordArgumentNode(IdentifierNode Key, Node Value) : Node;
internal sealed record SpreadNode(Node Argument) : Node;
internal sealed record KeywordSpreadNode(Node Argument) : Node;
internal sealed record SelectNode(Node Lhs, Node Test) : Node;
internal sealed record TernaryNode(Node Condition, Node TrueExpr, Node FalseExpr) : Node;
