"""Subscribe / template messages shared by the sandbox WeChat and Alipay: templates, grants, deliveries.

Kept free of imports at package level: merchants.py reads the templates while the channels' modules
(which import merchants) are still loading.
"""
