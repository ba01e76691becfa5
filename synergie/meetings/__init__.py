"""Quarterly meetings: planning, invitations with calendar requests, answers, waiting list, referrals, attendance."""
