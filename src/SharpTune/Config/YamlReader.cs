using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace SharpTune.Config;

/// <summary>
/// YAML text → <see cref="ConfigNode"/> tree, safe on hostile input: the tree is built from parser events with an explicit
/// stack (no recursion, so deep nesting cannot overflow the stack), nesting is limited to <see cref="MaxDepth"/>, an alias
/// shares its anchored node instead of copying it and the values all aliases expand to are counted against
/// <see cref="MaxExpandedValues"/> (an alias bomb stops after that many, in bounded memory), and every syntax error names
/// FILE:LINE:COLUMN and what the parser expected there.
/// </summary>
internal static class YamlReader
{
    /// <summary>A training config nests a handful of levels (datasets → entry → roles → list); 64 is far beyond any real one.</summary>
    public const int MaxDepth = 64;
    /// <summary>Values after alias expansion: real configs hold hundreds; an alias bomb reaches billions.</summary>
    public const int MaxExpandedValues = 100_000;

    private sealed class Frame(ConfigNode node, int startCount, AnchorName anchor, Mark start, bool flow)
    {
        /// <summary>Written as [..] or {..} (flow style), which must be closed on purpose.</summary>
        public bool Flow { get; } = flow;
        public ConfigNode Node { get; } = node;
        public int StartCount { get; } = startCount;
        public AnchorName Anchor { get; } = anchor;
        public Mark Start { get; } = start;
        public string? PendingKey { get; set; }
        public Mark PendingKeyMark { get; set; }
    }

    /// <summary>Parses one YAML document; null for an empty text. Errors are <see cref="InvalidInputException"/> with FILE:LINE:COL.</summary>
    public static ConfigNode? Parse(string text, string source, string? overrideArg)
    {
        var parser = new Parser(new StringReader(text));
        var anchors = new Dictionary<string, (ConfigNode Node, int Count)>();
        var stack = new Stack<Frame>();
        ConfigNode? root = null;
        int documents = 0;
        int values = 0;
        Mark at = Mark.Empty;
        while (true)
        {
            ParsingEvent? e;
            try
            {
                if (!parser.MoveNext()) break;
                e = parser.Current!;
            }
            catch (YamlException ex)
            {
                throw SyntaxError(text, source, ex.Start, ex.InnerException?.Message ?? ex.Message);
            }
            catch (Exception ex) when (ex is InvalidOperationException or ArgumentException)
            {
                // The scanner gave up in a state it does not describe; an open [ or { is the usual cause.
                var open = stack.FirstOrDefault(f => f.Flow);
                throw open is null
                    ? SyntaxError(text, source, at, "the text cannot be read as YAML here (an unclosed quote?)")
                    : SyntaxError(text, source, open.Start, open.Node is ListNode ? "this '[' is never closed; expected ',' or ']'" : "this '{' is never closed; expected ',' or '}'");
            }
            at = e.End;
            switch (e)
            {
                case StreamStart or StreamEnd or DocumentEnd or Comment:
                    continue;
                case DocumentStart:
                    if (++documents > 1) throw new InvalidInputException($"{source}:{e.Start.Line}:{e.Start.Column}: a second YAML document (---); expected one");
                    continue;
                case MappingEnd or SequenceEnd:
                {
                    var done = stack.Pop();
                    if (!done.Anchor.IsEmpty) anchors[done.Anchor.Value] = (done.Node, values - done.StartCount);
                    Attach(done.Node, done.Start);
                    continue;
                }
                case AnchorAlias alias:
                {
                    if (!anchors.TryGetValue(alias.Value.Value, out var target))
                        throw new InvalidInputException($"{source}:{e.Start.Line}:{e.Start.Column}: alias *{alias.Value.Value} names no anchor defined before it");
                    Count(target.Count, e.Start);
                    Attach(target.Node, e.Start);
                    continue;
                }
                case Scalar scalar:
                {
                    Count(1, e.Start);
                    bool isNull = scalar.Style == ScalarStyle.Plain && scalar.Value is "" or "~" or "null" or "Null" or "NULL";
                    var node = new ScalarNode { Text = isNull ? null : scalar.Value, Override = overrideArg };
                    if (!scalar.Anchor.IsEmpty) anchors[scalar.Anchor.Value] = (node, 1);
                    if (stack.TryPeek(out var map) && map.Node is MapNode && map.PendingKey is null)
                    {
                        if (isNull) throw new InvalidInputException($"{source}:{e.Start.Line}:{e.Start.Column}: a mapping key must be a plain name, not empty");
                        map.PendingKey = scalar.Value;
                        map.PendingKeyMark = e.Start;
                        continue;
                    }
                    Attach(node, e.Start);
                    continue;
                }
                case MappingStart or SequenceStart:
                {
                    if (stack.TryPeek(out var parent) && parent.Node is MapNode && parent.PendingKey is null)
                        throw new InvalidInputException($"{source}:{e.Start.Line}:{e.Start.Column}: a mapping key must be a plain name, not a list or mapping");
                    if (stack.Count >= MaxDepth)
                        throw new InvalidInputException($"{source}:{e.Start.Line}:{e.Start.Column}: nested deeper than {MaxDepth} levels; a config needs only a few");
                    Count(1, e.Start);
                    ConfigNode node = e is MappingStart ? new MapNode { Override = overrideArg } : new ListNode { Override = overrideArg };
                    bool flow = e is MappingStart { Style: MappingStyle.Flow } || e is SequenceStart { Style: SequenceStyle.Flow };
                    stack.Push(new Frame(node, values, ((NodeEvent)e).Anchor, e.Start, flow));
                    continue;
                }
                default:
                    throw new InvalidInputException($"{source}:{e.Start.Line}:{e.Start.Column}: unsupported YAML element {e.GetType().Name.ToLowerInvariant()}");
            }
        }
        return root;

        void Count(int n, Mark mark)
        {
            values += n;
            if (values > MaxExpandedValues)
                throw new InvalidInputException($"{source}:{mark.Line}:{mark.Column}: the document expands to more than {MaxExpandedValues} values " +
                                                "(aliases repeating aliases?); a config needs far fewer");
        }

        void Attach(ConfigNode node, Mark mark)
        {
            if (!stack.TryPeek(out var parent))
            {
                root = node;
                return;
            }
            if (parent.Node is ListNode list)
            {
                list.Items.Add(node);
                return;
            }
            var map = (MapNode)parent.Node;
            string key = parent.PendingKey!;
            if (map.Get(key) != null)
                throw new InvalidInputException($"{source}:{parent.PendingKeyMark.Line}:{parent.PendingKeyMark.Column}: key '{key}' appears twice in the same mapping; give it once");
            map.Entries.Add(new(key, node));
            parent.PendingKey = null;
        }
    }

    /// <summary>
    /// The parser's message with its place. A tab in the indentation makes the parser fail somewhere else (often at the
    /// line before, or at 1:1), so when one is there it is what the message names.
    /// </summary>
    private static InvalidInputException SyntaxError(string text, string source, Mark at, string what)
    {
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
            int indentEnd = 0;
            while (indentEnd < line.Length && line[indentEnd] is ' ' or '\t') indentEnd++;
            int tab = line.IndexOf('\t', 0, indentEnd);
            if (tab >= 0 && indentEnd < line.Length && line[indentEnd] is not ('#' or '\r'))
                return new InvalidInputException($"{source}:{i + 1}:{tab + 1}: YAML syntax error: a tab in the indentation; YAML indents with spaces only");
        }
        return new InvalidInputException($"{source}:{Math.Max(at.Line, 1)}:{Math.Max(at.Column, 1)}: YAML syntax error: {ConfigTree.OneLine(what)}");
    }
}
