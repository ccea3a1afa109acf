namespace SharpTune;

/// <summary>
/// Bad usage, config or input: the message is one line naming the file/row/key, the value and what is allowed.
/// The CLI maps it to exit code 2.
/// </summary>
public class InvalidInputException(string message) : Exception(message);
