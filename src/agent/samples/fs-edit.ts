/**
 * The demo recording: an agent fixes a typo in /workspace/README.md through an
 * MCP filesystem server named `fs`. Listing and reading are green and run at
 * once; the edit is red and stops at the Approval Cliff.
 */
export const fsEdit = {
  name: "sample:fs-edit",
  task: "Fix the typo in README.md",
  description: "List /workspace, read README.md, then edit_file it (red: needs approval). Config: an MCP server 'fs' running @modelcontextprotocol/server-filesystem on /workspace.",
  turns: [
    {
      text: "I'll start by looking at what is in the workspace.",
      toolCalls: [{ name: "fs__list_directory", args: { path: "/workspace" } }],
    },
    {
      text: "There is a README.md. Let me read it.",
      toolCalls: [{ name: "fs__read_text_file", args: { path: "/workspace/README.md" } }],
    },
    {
      text: "It says \"teh\" where it means \"the\". I'll fix that with one edit.",
      toolCalls: [{ name: "fs__edit_file", args: { path: "/workspace/README.md", edits: [{ oldText: "teh", newText: "the" }] } }],
    },
    {
      text: "That was my last step: if the edit was approved, README.md now reads \"the\"; if it was denied, the file is unchanged.",
    },
  ],
};
