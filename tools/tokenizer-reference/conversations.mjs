// Conversations rendered through each chat template. Every base conversation is rendered with
// add_generation_prompt false and true; templates with tool or multimodal support get extra ones.
const sys = (content) => ({ role: "system", content });
const user = (content) => ({ role: "user", content });
const assistant = (content) => ({ role: "assistant", content });

const base = [
  [user("Hello!")],
  [user("  Hello with edges  \n")],
  [sys("You are a helpful assistant."), user("What is 2+2?")],
  [sys("Be terse."), user("Hi"), assistant("Hello.")],
  [user("Hi"), assistant("Hello! How can I help?"), user("Tell me a joke.")],
  [user("Hi"), assistant("Hello! How can I help?"), user("Tell me a joke."), assistant("Why did the chicken cross the road?")],
  [sys("You speak French."), user("Bonjour"), assistant("Bonjour ! Comment ça va ?"), user("Très bien, merci.")],
  [user("你好，请介绍一下你自己。"), assistant("我是一个语言模型。")],
  [user("Write code:\n```python\nprint('hi')\n```"), assistant("```python\ndef f():\n    return 1\n```")],
  [user("emoji 😀🚀 and مرحبا")],
  [sys("  padded system prompt  "), user("\n\nnewlines first"), assistant("  spaced answer  ")],
  [user("a"), assistant("b"), user("c"), assistant("d"), user("e"), assistant("f"), user("g")],
  [user("Quote \"double\" and 'single' and back\\slash")],
  [user("Special <s> tokens </s> inside <|im_end|> text")],
  [sys("multi\nline\nsystem"), user("multi\nline\nuser")],
  [user("")],
  [user("Tabs\tand\ttabs"), assistant("\tindented answer")],
  [sys("System only at start."), user("one"), assistant("two"), user("three"), assistant("four")],
  [user("What's {{ not a template }} {% raw %}?")],
  [user("Numbers 1234567890 and 3.14")],
];

const tools = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Get the current weather in a city",
      parameters: {
        type: "object",
        properties: { city: { type: "string", description: "City name" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
        required: ["city"],
      },
    },
  },
  {
    type: "function",
    function: { name: "add", description: "Add two integers", parameters: { type: "object", properties: { a: { type: "integer" }, b: { type: "integer" } }, required: ["a", "b"] } },
  },
];
const toolCall = (name, args) => ({ type: "function", function: { name, arguments: args } });

const qwenExtras = [
  { messages: [user("Weather in Paris?")], tools },
  { messages: [sys("You are a weather bot."), user("Weather in Paris?")], tools },
  {
    messages: [user("Weather in Paris?"), { role: "assistant", content: "", tool_calls: [toolCall("get_weather", { city: "Paris" })] }, { role: "tool", content: "{\"temp\": 21}" }],
    tools,
  },
  {
    messages: [
      user("Add 2 and 3, and weather in Rome"),
      { role: "assistant", content: "Let me call tools.", tool_calls: [toolCall("add", { a: 2, b: 3 }), toolCall("get_weather", "{\"city\": \"Rome\"}")] },
      { role: "tool", content: "5" },
      { role: "tool", content: "sunny" },
      assistant("2+3=5 and it is sunny in Rome."),
    ],
    tools,
  },
  { messages: [user("Think about 2+2"), { role: "assistant", content: "4", reasoning_content: "Two plus two is four." }] },
  { messages: [user("Think"), assistant("<think>\nreasoning here\n</think>\n\nThe answer.")] },
  { messages: [user("Q1"), assistant("<think>\nold reasoning\n</think>\n\nA1"), user("Q2"), assistant("<think>\nnew reasoning\n</think>\n\nA2")] },
  { messages: [user("<tool_response>\nnot a real tool\n</tool_response>"), assistant("ok")] },
  { messages: [user("No thinking please")], enable_thinking: false },
  { messages: [user("Thinking allowed")], enable_thinking: true },
  { messages: [sys("sys"), user("hi"), sys("second system mid-conversation"), user("again")] },
];

const llama31Extras = [
  { messages: [user("Weather in Paris?")], tools },
  { messages: [sys("You are a bot."), user("Weather in Paris?")], tools, tools_in_user_message: false },
  {
    messages: [user("Weather in Paris?"), { role: "assistant", tool_calls: [toolCall("get_weather", { city: "Paris" })] }, { role: "tool", content: { temp: 21, unit: "celsius" } }],
    tools,
  },
  { messages: [user("Search the web")], builtin_tools: ["brave_search", "code_interpreter"] },
  { messages: [user("Hi")], date_string: "01 Jan 2025" },
  { messages: [user("Two calls"), { role: "assistant", tool_calls: [toolCall("add", { a: 1, b: 2 }), toolCall("add", { a: 3, b: 4 })] }], tools },
  { messages: [], tools },
];

const gemma3Extras = [
  { messages: [{ role: "user", content: [{ type: "image" }, { type: "text", text: "  Describe this image.  " }] }] },
  { messages: [{ role: "system", content: [{ type: "text", text: "Be brief." }] }, { role: "user", content: [{ type: "text", text: "Hi" }] }] },
  { messages: [user("one"), user("two")] },
  { messages: [assistant("starts with assistant")] },
];

const alternationErrors = [{ messages: [user("one"), user("two")] }, { messages: [assistant("first")] }];

export function conversationsFor(name) {
  const result = [];
  let extras = [];
  if (name === "qwen3") extras = qwenExtras;
  else if (name === "llama31_tools") extras = llama31Extras;
  else if (name === "gemma3") extras = gemma3Extras;
  else if (name === "llama2" || name === "mistral" || name === "gemma2") extras = alternationErrors;
  const all = [...base.map((messages) => ({ messages })), ...extras];
  for (const conversation of all) {
    for (const add_generation_prompt of [false, true]) {
      result.push({ ...conversation, add_generation_prompt });
    }
  }
  return result;
}
