namespace SharpTune.Inference;

/// <summary>
/// A conversation kept across turns: each user message is appended, the whole history goes through the chat
/// template, and the reply joins the history. <see cref="RunLoop"/> is the interactive `sharptune chat`.
/// </summary>
public sealed class ChatSession(TextGenerator generator, TextGenerationOptions options, string? systemPrompt = null)
{
    private readonly List<ChatMessage> history = Initial(systemPrompt);

    public IReadOnlyList<ChatMessage> History => history;

    public void Reset()
    {
        history.Clear();
        history.AddRange(Initial(systemPrompt));
    }

    /// <summary>Answers one user message; on a bad turn (too long for the context) the history is left as it was.</summary>
    public TextCompletion Send(string userText, Action<string>? onText = null, CancellationToken cancellation = default)
    {
        if (string.IsNullOrWhiteSpace(userText)) throw new InvalidInputException("message: empty; type some text");
        var turn = new List<ChatMessage>(history) { new("user", userText) };
        var prompt = generator.EncodeChat(turn);
        var reply = generator.Generate(prompt, options, onText, cancellation);
        history.Add(turn[^1]);
        history.Add(new ChatMessage("assistant", reply.Text));
        return reply;
    }

    /// <summary>Reads user lines until /exit or the end of input; /reset clears the history. Replies stream to <paramref name="output"/>.</summary>
    /// <returns>the number of answered turns.</returns>
    public int RunLoop(TextReader input, TextWriter output, TextWriter errors)
    {
        output.WriteLine("chat: type a message; /reset clears the history, /exit quits.");
        int turns = 0;
        while (true)
        {
            output.Write("> ");
            output.Flush();
            var line = input.ReadLine();
            if (line is null) { output.WriteLine(); break; }
            var text = line.Trim();
            if (text.Length == 0) continue;
            if (text is "/exit" or "/quit") break;
            if (text == "/reset")
            {
                Reset();
                output.WriteLine("(history cleared)");
                continue;
            }
            try
            {
                var reply = Send(line, piece => { output.Write(piece); output.Flush(); });
                output.WriteLine();
                if (reply.Finish == FinishReason.Length) errors.WriteLine($"(reply cut at {reply.CompletionTokens} tokens)");
                turns++;
            }
            catch (InvalidInputException e)
            {
                errors.WriteLine($"error: {e.Message}");
            }
        }
        return turns;
    }

    private static List<ChatMessage> Initial(string? systemPrompt) =>
        string.IsNullOrEmpty(systemPrompt) ? [] : [new ChatMessage("system", systemPrompt)];
}
