"""The LLM side of bgen: the provider client and the context pack given to the model.

    client.py    LLMSettings, LLMClient, LLMReply; urllib only (anthropic, openai, local servers)
    context/     API cheatsheet, policy template and examples, with loaders
"""

from bgen.llm.client import LLMClient, LLMReply, LLMSettings, extract_code

__all__ = ["LLMClient", "LLMReply", "LLMSettings", "extract_code"]
